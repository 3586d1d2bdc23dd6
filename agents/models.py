"""Agents, tools, sessions, runs, messages and API keys: the durable record."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_celery_beat.models import PeriodicTask

from agentplatform.sdk import conditions
from approvals.models import ExpiryAction


class Agent(models.Model):
    """A code-registered agent mirrored in the database, with operator overrides."""

    name = models.SlugField(max_length=63, unique=True)
    description = models.TextField(blank=True)
    code_model = models.CharField("model (from code)", max_length=200, editable=False)
    code_instructions = models.TextField("instructions (from code)", blank=True, editable=False)
    custom_turn = models.BooleanField(
        default=False, editable=False, help_text="The agent overrides run(): it drives its own SDK or framework."
    )
    registered = models.BooleanField(
        default=True, editable=False, help_text="Present in this deployment's code at the last sync."
    )
    enabled = models.BooleanField(default=True)
    model_override = models.CharField(
        max_length=200, blank=True, help_text="'provider:model', e.g. openai:gpt-4o-mini. Blank: use the code's."
    )
    instructions_override = models.TextField(blank=True, help_text="Blank: use the code's instructions.")
    approval_timeout = models.DurationField(
        null=True, blank=True, help_text="How long a tool call waits for approval. Blank: the platform default (24 h)."
    )
    approval_expiry_action = models.CharField(
        max_length=10, choices=ExpiryAction.choices, default=ExpiryAction.REJECT, help_text="When a request expires."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def model(self) -> str:
        return self.model_override or self.code_model

    @property
    def instructions(self) -> str:
        return self.instructions_override or self.code_instructions


class PermissionChoice(models.TextChoices):
    ALLOW = "allow", "Allow"
    CONFIRM = "confirm", "Confirm (human approval)"
    DENY = "deny", "Deny"


class Tool(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tool_rows")
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True, editable=False)
    parameters = models.JSONField(default=dict, editable=False, help_text="JSON schema of the arguments.")
    code_permission = models.CharField(
        "permission (from code)", max_length=10, choices=PermissionChoice.choices, editable=False
    )
    permission_override = models.CharField(
        max_length=10, choices=PermissionChoice.choices, blank=True, help_text="Blank: use the code's permission."
    )
    registered = models.BooleanField(default=True, editable=False)
    conditions = models.JSONField(
        default=list,
        blank=True,
        help_text='Rules on the arguments, first match wins, e.g. [{"when": {"arg": "amount", "op": "gt", '
        '"value": 100}, "then": "confirm"}]. Ops: eq ne gt gte lt lte in not_in contains exists; all/any/not.',
    )
    approval_timeout = models.DurationField(null=True, blank=True, help_text="Blank: the agent's.")
    approval_expiry_action = models.CharField(
        max_length=10, choices=ExpiryAction.choices, blank=True, help_text="Blank: the agent's."
    )

    class Meta:
        ordering = ["agent", "name"]
        constraints = [models.UniqueConstraint(fields=["agent", "name"], name="tool_unique_name_per_agent")]

    def __str__(self) -> str:
        return f"{self.agent.name}.{self.name}"

    @property
    def permission(self) -> str:
        return self.permission_override or self.code_permission

    def clean(self) -> None:
        try:
            conditions.validate(self.conditions, self.parameters)
        except conditions.ConditionError as exc:
            raise ValidationError({"conditions": str(exc)}) from None


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_sessions")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="sessions")
    title = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    message_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="session_owner_created"),
            models.Index(fields=["owner", "agent", "-created_at", "-id"], name="session_owner_agent_created"),
        ]

    def __str__(self) -> str:
        return self.title or str(self.id)


class IfBusy(models.TextChoices):
    """What new input to a session with an active run does."""

    REJECT = "reject"  # 409 with the active run's id
    ENQUEUE = "enqueue"  # runs after the runs already in line
    INTERRUPT = "interrupt"  # cancels the active runs, then runs


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"  # paused, holding no worker, until its calls are decided
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
# At most one run of a session holds it (runs, or waits for a decision); the rest wait in line.
HOLDING_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)

# The only status changes a run may make; anything else is a bug or a race and is refused.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.AWAITING_APPROVAL, RunStatus.CANCELLED}
    ),
    RunStatus.AWAITING_APPROVAL: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="runs")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_runs")
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    input = models.TextField()
    output = models.TextField(blank=True)
    error = models.JSONField(null=True, blank=True, help_text='{"code", "message", "details"} when not completed.')
    metadata = models.JSONField(default=dict, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The model this run used.")
    steps = models.PositiveIntegerField(default=0, help_text="Model calls made.")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When the run was last handed to the broker.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="The worker running it renews this; past it, the run is presumed lost."
    )
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="A cancel was asked for; the run stops at its next step."
    )
    schedule = models.ForeignKey(
        "Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        db_index=False,  # run_schedule_created covers it
        help_text="The schedule that started it.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["session", "-created_at", "-id"], name="run_session_created"),
            models.Index(fields=["owner", "-created_at"], name="run_owner_created"),
            models.Index(fields=["status"], name="run_status"),
            models.Index(fields=["schedule", "-created_at", "-id"], name="run_schedule_created"),
        ]
        constraints = [
            # Runs may wait in line (queued) behind the one that holds the session: it runs,
            # or it is paused for approval. Only one holds it at a time.
            models.UniqueConstraint(
                fields=["session"],
                condition=Q(status__in=HOLDING_RUN_STATUSES),
                name="run_one_holding_per_session",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Message(models.Model):
    """One message of a session at a fixed position. Appended, never rewritten."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    position = models.PositiveIntegerField()
    role = models.CharField(max_length=10, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    tool_calls = models.JSONField(default=list, blank=True, help_text='Assistant turns: [{"id", "name", "arguments"}].')
    tool_call_id = models.CharField(max_length=100, blank=True, help_text="Tool results: the call answered.")
    tool_name = models.CharField(max_length=64, blank=True)
    is_error = models.BooleanField(default=False, help_text="Tool results: the call failed or was refused.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="message_unique_position_per_session")
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.position}"


class RunEvent(models.Model):
    """One step of a run, in order: the durable record that live streams replay from."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField(help_text="1, 2, 3, ... within the run; clients resume after it.")
    type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="run_event_unique_seq")]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` a caller sent with a run request: the same key answers the same run."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the agent and the request body.")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_unique_per_owner")]

    def __str__(self) -> str:
        return self.key


class ApiKey(models.Model):
    """An API key. Only a SHA-256 of the secret is stored; the key is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, editable=False, help_text="Shown to tell keys apart; not secret.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    agents = models.ManyToManyField(
        Agent, blank=True, related_name="api_keys", help_text="Restrict the key to these agents. Empty: all agents."
    )
    scopes = models.JSONField(default=list, blank=True, help_text='Extra rights, e.g. ["approvals:decide"].')
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The key's own limits: blank takes the deployment's setting, 0 is unlimited.
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_RATE_LIMIT_REQUESTS_PER_MINUTE. 0: unlimited."
    )
    runs_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_RATE_LIMIT_RUNS_PER_MINUTE. 0: unlimited."
    )
    concurrent_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_RATE_LIMIT_CONCURRENT_RUNS. 0: unlimited."
    )
    tokens_per_day = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_RATE_LIMIT_TOKENS_PER_DAY. 0: unlimited."
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or self.user})"


class OwnerLimits(models.Model):
    """A user's limits over all of their API keys (and their own signed-in requests) together:
    blank takes the deployment's setting, 0 is unlimited. Checked alongside each key's own."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="owner_limits"
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_OWNER_RATE_LIMIT_REQUESTS_PER_MINUTE. 0: unlimited."
    )
    runs_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_OWNER_RATE_LIMIT_RUNS_PER_MINUTE. 0: unlimited."
    )
    concurrent_runs = models.PositiveIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_OWNER_RATE_LIMIT_CONCURRENT_RUNS. 0: unlimited."
    )
    tokens_per_day = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Blank: AGENTPLATFORM_OWNER_RATE_LIMIT_TOKENS_PER_DAY. 0: unlimited."
    )

    class Meta:
        verbose_name = "owner limits"
        verbose_name_plural = "owner limits"

    def __str__(self) -> str:
        return f"limits of {self.user}"


class SessionStrategy(models.TextChoices):
    NEW = "new", "A new session each time"
    FIXED = "fixed", "One fixed session"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip", "Skip while the schedule's previous run is active"
    ALLOW = "allow", "Start anyway (in a fixed session: queue behind it)"


class Schedule(models.Model):
    """An agent job that Celery beat fires on a cron expression or an interval.

    The service keeps its `PeriodicTask` (django-celery-beat's row, which beat reads) in step.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_schedules",
        help_text="Runs as this user.",
    )
    api_key = models.ForeignKey(
        "ApiKey",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        editable=False,
        help_text="Created with this key: its agent restrictions apply, and it stops firing once the key is revoked.",
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="schedules")
    name = models.CharField(max_length=200)
    input = models.TextField(help_text="The user message each run gets.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Copied into each run.")
    cron = models.CharField(
        max_length=200, blank=True, help_text="minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5."
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name the cron expression is read in.")
    interval_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Instead of cron: every N seconds.")
    session_strategy = models.CharField(max_length=10, choices=SessionStrategy.choices, default=SessionStrategy.NEW)
    session = models.ForeignKey(
        Session,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="schedules",
        help_text="The fixed session. Empty: the first firing starts one.",
    )
    overlap = models.CharField(max_length=10, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    enabled = models.BooleanField(default=True)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="The first firing after it disables the schedule.")
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, on_delete=models.SET_NULL, related_name="agent_schedule", editable=False
    )
    last_firing = models.ForeignKey(
        "ScheduleFiring", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at", "-id"], name="schedule_owner_created")]

    def __str__(self) -> str:
        return self.name

    @property
    def when(self) -> str:
        if self.cron:
            return f"{self.cron} ({self.timezone})"
        return f"every {self.interval_seconds} s"


class FiringOutcome(models.TextChoices):
    STARTED = "started"  # a run was created
    SKIPPED = "skipped"  # a run of the schedule (or of its session) was still active
    FAILED = "failed"  # the run could not be started (agent disabled, key revoked, ...)
    ENDED = "ended"  # past the end date: the schedule was disabled


class ScheduleFiring(models.Model):
    """One time beat fired a schedule, and what came of it."""

    schedule = models.ForeignKey(
        Schedule,
        on_delete=models.CASCADE,
        related_name="firings",
        db_index=False,  # firing_schedule_created covers it
    )
    outcome = models.CharField(max_length=10, choices=FiringOutcome.choices)
    run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run it started or, when skipped, the active run it found.",
    )
    error = models.JSONField(null=True, blank=True, help_text='{"code", "message", "details"} when not started.')
    task_id = models.CharField(max_length=255, blank=True, help_text="The Celery task id: a redelivery fires once.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["schedule", "-created_at", "-id"], name="firing_schedule_created")]
        constraints = [
            models.UniqueConstraint(fields=["task_id"], condition=~Q(task_id=""), name="firing_unique_task_id")
        ]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.created_at:%Y-%m-%d %H:%M:%S}"
