"""Approval requests: one per tool call that needs a human decision, bound to exact arguments."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

COMMENT_MAX_CHARS = 2000


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the run ended (cancelled) before anyone decided


class ExpiryAction(models.TextChoices):
    REJECT = "reject", "Reject the call (the model is told it expired)"
    CANCEL_RUN = "cancel_run", "Cancel the run"


class Channel(models.TextChoices):
    ADMIN = "admin"
    API = "api"
    WEBSOCKET = "websocket"
    EXPIRY = "expiry"


class PendingFirst(models.Func):
    """0 for a pending request, else 1: the inbox's first sort key.

    Written with literals, not query parameters, so that the query's expression is the
    index's and both PostgreSQL and SQLite serve the order from the index.
    """

    template = f"CASE WHEN %(expressions)s = '{ApprovalStatus.PENDING.value}' THEN 0 ELSE 1 END"
    output_field = models.IntegerField()

    def __init__(self) -> None:
        super().__init__(F("status"))


# The inbox's order: pending requests first, then newest first. The admin orders by it and an
# index on the same expressions serves it, so the first page costs the same at any size.
INBOX_ORDER = (PendingFirst().asc(), F("requested_at").desc(), F("id").desc())


class ApprovalRequest(models.Model):
    """A CONFIRM tool call waiting for (or given) a decision.

    The tool runs only with `approved_arguments`, and only while their hash matches
    `approved_hash`, recorded with the decision.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey("agents.Run", on_delete=models.CASCADE, related_name="approvals")
    session = models.ForeignKey("agents.Session", on_delete=models.CASCADE, related_name="approvals")
    agent = models.ForeignKey("agents.Agent", on_delete=models.PROTECT, related_name="approvals")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approval_requests", help_text="Requested by."
    )
    call_id = models.CharField(max_length=100)
    tool_name = models.CharField(max_length=64)
    arguments = models.JSONField(help_text="As the model proposed them.")
    arguments_hash = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, help_text="The tool's JSON schema: edited arguments must match it.")
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    expiry_action = models.CharField(max_length=10, choices=ExpiryAction.choices, default=ExpiryAction.REJECT)
    approved_arguments = models.JSONField(null=True, blank=True)
    approved_hash = models.CharField(max_length=64, blank=True)
    diff = models.JSONField(default=list, blank=True, help_text='Edits: [{"op", "path", "old", "new"}].')
    reason = models.TextField(blank=True, help_text="Why it was rejected (the model reads it).")
    comment = models.TextField(
        blank=True, max_length=COMMENT_MAX_CHARS, help_text="The reviewer's note on the decision (people read it)."
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="approval_decisions"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    executed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the tool ran with the approved arguments."
    )

    class Meta:
        ordering = ["-requested_at"]
        permissions = [("decide_approvalrequest", "Can approve or reject tool calls")]
        indexes = [
            models.Index(fields=["status", "-requested_at"], name="approval_status_requested"),
            models.Index(fields=["owner", "status", "-requested_at"], name="approval_owner_status"),
            models.Index(
                fields=["expires_at"], condition=Q(status=ApprovalStatus.PENDING), name="approval_pending_expiry"
            ),
            models.Index(*INBOX_ORDER, name="approval_inbox_order"),
        ]
        constraints = [models.UniqueConstraint(fields=["run", "call_id"], name="approval_one_per_call")]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.status})"

    @property
    def decided(self) -> bool:
        return self.status != ApprovalStatus.PENDING


class WebhookEvent(models.TextChoices):
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_EXPIRED = "approval.expired"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"


class WebhookEndpoint(models.Model):
    """Where events are POSTed, signed with the endpoint's secret (encrypted at rest)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text="The events it receives (WebhookEvent values).")
    enabled = models.BooleanField(default=True)
    all_owners = models.BooleanField(
        default=False,
        help_text="Receive the events of every owner's runs, not only its owner's (staff owners only; the admin only).",
    )
    secret_encrypted = models.TextField(editable=False, help_text="The signing secret, encrypted (Fernet).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="webhook_owner_created"),
            models.Index(fields=["all_owners"], condition=Q(all_owners=True), name="webhook_all_owners"),
        ]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # not delivered yet: an attempt is due or scheduled
    DELIVERED = "delivered"  # an attempt got a 2xx
    FAILED = "failed"  # every attempt failed, or the URL was refused


class WebhookDelivery(models.Model):
    """One event for one endpoint: an outbox row, written with the event, sent after commit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(help_text="The event's id (the same for every endpoint that receives it).")
    event_type = models.CharField(max_length=32, choices=WebhookEvent.choices)
    payload = models.TextField(help_text="The exact JSON body sent (and signed) on every attempt.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When the next automatic attempt is due.")
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="An attempt is in flight until then.")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=DeliveryStatus.PENDING),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.status})"


class AttemptTrigger(models.TextChoices):
    AUTOMATIC = "automatic"
    RESEND = "resend"


class WebhookAttempt(models.Model):
    """One POST of a delivery (or its refusal before any connection), as it went."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=10, choices=AttemptTrigger.choices, default=AttemptTrigger.AUTOMATIC)
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004
