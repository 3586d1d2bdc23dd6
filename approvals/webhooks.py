"""Webhooks: endpoints, the outbox of deliveries, and their attempts.

`emit` writes one delivery per interested endpoint in the caller's transaction (the event
and its deliveries commit together) and hands them to the `webhooks` queue on commit; a
run never waits for an endpoint. `attempt` is the task's body: one signed POST with a
short timeout, logged, then retried with exponential backoff until it succeeds or the
attempts run out.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agentplatform import sql
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import TargetType
from agentplatform.audit.services import as_stored, record_change, snapshot
from agentplatform.celery import TaskName, app
from agentplatform.conf import platform_settings
from agentplatform.errors import InvalidInput
from agentplatform.users import User
from approvals import webhook_signing, webhook_transport
from approvals.errors import (
    InvalidWebhookUrl,
    NotAllowedToManageWebhooks,
    WebhookDisabled,
    WebhookSecretUnreadable,
    WebhookUrlRefused,
)
from approvals.models import (
    ApprovalRequest,
    AttemptTrigger,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

logger = logging.getLogger(__name__)

MANAGE_SCOPE = "webhooks:manage"
CLOCK_SLACK = timedelta(seconds=2)  # a retry's task may run this early (clocks of different hosts)
ERROR_CHARS = 500
# What the audit log records of an endpoint: the secret only as "[redacted]", when it changes.
AUDITED_FIELDS = ("owner", "url", "description", "event_types", "enabled", "all_owners", "secret_encrypted")


def may_manage(user: User, scopes: tuple[str, ...] | None) -> bool:
    """An API key with the `webhooks:manage` scope, or a person signed in as staff and verified
    by a second factor (django-otp); either manages the endpoints its user owns."""
    if not user.is_active:
        return False
    if scopes is None:
        verified = getattr(user, "is_verified", None)  # set by django-otp's middleware on a request's user
        return bool(user.is_staff and callable(verified) and verified())
    return MANAGE_SCOPE in scopes


def check_may_manage(user: User, scopes: tuple[str, ...] | None) -> None:
    if not may_manage(user, scopes):
        raise NotAllowedToManageWebhooks()


def check_url(url: str) -> None:
    """Refuse a URL that is malformed, does not resolve, or (unless allowed) resolves to a
    private, loopback or link-local address."""
    webhook_transport.check_url(url, allow_private=platform_settings().WEBHOOKS_ALLOW_PRIVATE)


def check_event_types(event_types: Any) -> None:
    valid = isinstance(event_types, list) and event_types and all(e in WebhookEvent.values for e in event_types)
    if not valid:
        expected = ", ".join(WebhookEvent.values)
        raise InvalidInput(f"event_types must be a non-empty list of: {expected}.", details={"field": "event_types"})


def check_all_owners(owner: User, all_owners: bool) -> None:
    """Every owner's events may go only to an endpoint of a staff user (who could read them anyway)."""
    if all_owners and not owner.is_staff:
        raise InvalidInput(
            "Only a staff user's endpoint may receive every owner's events.", details={"field": "all_owners"}
        )


def create_endpoint(
    *,
    owner: User,
    actor: Actor,
    url: str,
    event_types: list[str],
    description: str = "",
    enabled: bool = True,
    all_owners: bool = False,
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (generated unless given): the only time it is shown."""
    check_event_types(event_types)
    check_all_owners(owner, all_owners)
    check_url(url)
    secret = secret or webhook_signing.generate_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            owner=owner,
            url=url,
            event_types=sorted(set(event_types)),
            description=description,
            enabled=enabled,
            all_owners=all_owners,
            secret_encrypted=webhook_signing.encrypt(secret),
        )
        record_change(actor, TargetType.WEBHOOK, endpoint, None, snapshot(endpoint, AUDITED_FIELDS))
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, changes: dict[str, Any], *, actor: Actor) -> WebhookEndpoint:
    """Change some of url, event_types, description, enabled, all_owners and secret."""
    changes = dict(changes)
    check_all_owners(changes.get("owner", endpoint.owner), changes.get("all_owners", endpoint.all_owners))
    if "url" in changes:
        check_url(changes["url"])
    if "event_types" in changes:
        check_event_types(changes["event_types"])
        changes["event_types"] = sorted(set(changes["event_types"]))
    secret = changes.pop("secret", None)
    with transaction.atomic():
        before = as_stored(endpoint, AUDITED_FIELDS)
        if secret:
            endpoint.secret_encrypted = webhook_signing.encrypt(secret)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
        record_change(actor, TargetType.WEBHOOK, endpoint, before, snapshot(endpoint, AUDITED_FIELDS))
    return endpoint


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    with transaction.atomic():
        record_change(actor, TargetType.WEBHOOK, endpoint, snapshot(endpoint, AUDITED_FIELDS), None)
        endpoint.delete()  # its deliveries and their attempts go with it


def emit(event_type: WebhookEvent, data: dict[str, Any], *, owner_id: Any) -> list[WebhookDelivery]:
    """Outbox: a delivery for each enabled endpoint of the owner (or of every owner) that
    wants `event_type`, in the current transaction; sent to the `webhooks` queue on commit."""
    endpoints = _interested(event_type, owner_id)
    return _write(event_type, endpoints, data) if endpoints else []


def emit_approvals(event_type: WebhookEvent, requests: Iterable[ApprovalRequest]) -> None:
    """`emit` for approval requests (their data is built only when some endpoint wants it)."""
    for request in requests:
        endpoints = _interested(event_type, request.owner_id)
        if endpoints:
            _write(event_type, endpoints, approval_data(request))


def _interested(event_type: WebhookEvent, owner_id: Any) -> list[WebhookEndpoint]:
    """The enabled endpoints for the owner's events: its own, and those of staff owners that
    receive every owner's. Read as every run ends: SQL, see `agentplatform.sql`."""
    yes = ("enabled", True)
    params = sql.values(WebhookEndpoint, yes, ("owner", owner_id), ("all_owners", True), yes, yes)
    found = []
    for pk, stored in sql.rows(_interested_sql(), params):
        kinds = sql.convert(WebhookEndpoint, "event_types", stored)
        if event_type in kinds:
            found.append(WebhookEndpoint(pk=pk, event_types=kinds))
    return found


@functools.cache
def _interested_sql() -> str:
    users = sql.table(get_user_model())
    return (
        f"SELECT e.id, e.event_types FROM {sql.table(WebhookEndpoint)} e JOIN {users} u ON u.id = e.owner_id"  # noqa: S608
        " WHERE e.enabled = %s AND (e.owner_id = %s OR (e.all_owners = %s AND u.is_staff = %s AND u.is_active = %s))"
    )


def _write(event_type: WebhookEvent, endpoints: list[WebhookEndpoint], data: dict[str, Any]) -> list[WebhookDelivery]:
    now = timezone.now()
    event_id = uuid.uuid4()
    event = {"id": str(event_id), "type": str(event_type), "created_at": now.isoformat(), "data": data}
    body = json.dumps(event, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
    rows = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=e, event_id=event_id, event_type=event_type, payload=body, next_attempt_at=now)
        for e in endpoints
    )
    ids = [str(row.pk) for row in rows]

    def send_all() -> None:
        for pk in ids:
            _send(pk, AttemptTrigger.AUTOMATIC)

    transaction.on_commit(send_all, robust=True)
    return rows


def approval_data(request: ApprovalRequest) -> dict[str, Any]:
    """An approval request in a webhook: the fields the API shows for it."""
    return {
        "id": str(request.pk),
        "run_id": str(request.run_id),
        "session_id": str(request.session_id),
        "agent": request.agent.name,
        "tool": request.tool_name,
        "call_id": request.call_id,
        "arguments": request.arguments,
        "status": request.status,
        "requested_at": request.requested_at,
        "expires_at": request.expires_at,
        "expiry_action": request.expiry_action,
        "approved_arguments": request.approved_arguments,
        "diff": request.diff,
        "reason": request.reason,
        "comment": request.comment,
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "decided_at": request.decided_at,
        "channel": request.channel,
    }


def resend(delivery: WebhookDelivery) -> WebhookDelivery:
    """One more attempt now (on the webhooks queue), whatever the delivery's status."""
    if not delivery.endpoint.enabled:
        raise WebhookDisabled("The endpoint is disabled: enable it to resend.")
    transaction.on_commit(lambda: _send(str(delivery.pk), AttemptTrigger.RESEND), robust=True)
    return delivery


def _send(delivery_id: str, trigger: str, countdown: float = 0) -> None:
    app.send_task(TaskName.DELIVER_WEBHOOK, args=[delivery_id, trigger], countdown=countdown or None)


class DeliveryBusy(Exception):
    """Another attempt of this delivery is in flight: a resend tries again shortly."""


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    latency_ms: int | None = None
    final: bool = False  # no automatic retry would help (refused, disabled)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300  # noqa: PLR2004


def attempt(delivery_id: uuid.UUID, trigger: str) -> dict[str, Any]:
    """One attempt of a delivery (the task's body); a small summary for the task.

    Safe to deliver twice: an attempt claims the delivery (a lease) with one conditional
    UPDATE, and an automatic attempt runs only while the delivery is pending and due.
    """
    delivery = _claim(delivery_id, trigger)
    if delivery is None:
        if trigger == AttemptTrigger.RESEND and WebhookDelivery.objects.filter(pk=delivery_id).exists():
            raise DeliveryBusy(str(delivery_id))
        return {"delivery_id": str(delivery_id), "attempted": False}
    started_at = timezone.now()
    outcome = _post(delivery, delivery.attempt_count + 1)
    with transaction.atomic():
        number = _record(delivery, trigger, started_at, outcome)
    logger.info(
        "webhook delivery %s (%s) attempt %d: %s",
        delivery.pk,
        delivery.event_type,
        number,
        outcome.status_code or outcome.error,
    )
    return {"delivery_id": str(delivery.pk), "attempted": True, "attempt": number, "status": delivery.status}


def _claim(delivery_id: uuid.UUID, trigger: str) -> WebhookDelivery | None:
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(Q(claimed_until=None) | Q(claimed_until__lt=now), pk=delivery_id)
    if trigger == AttemptTrigger.AUTOMATIC:
        rows = rows.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now + CLOCK_SLACK)
    lease = now + timedelta(seconds=3 * platform_settings().WEBHOOK_TIMEOUT + 30)
    if not rows.update(claimed_until=lease):
        return None
    return WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()  # None: just deleted


def _post(delivery: WebhookDelivery, number: int) -> _Outcome:
    """Check the URL again (after DNS resolution), sign and POST; never raises for the endpoint's faults."""
    endpoint, conf = delivery.endpoint, platform_settings()
    if not endpoint.enabled:
        return _Outcome(error="The endpoint is disabled.", final=True)
    try:
        target = webhook_transport.check_url(endpoint.url, allow_private=conf.WEBHOOKS_ALLOW_PRIVATE)
        secret = webhook_signing.decrypt(endpoint.secret_encrypted)
    except WebhookUrlRefused as exc:
        return _Outcome(error=f"Refused: {exc.message}", final=True)
    except (InvalidWebhookUrl, WebhookSecretUnreadable) as exc:
        return _Outcome(error=exc.message)
    body = delivery.payload.encode()
    headers = webhook_signing.headers(
        secret=secret,
        timestamp=int(time.time()),
        body=body,
        event_type=delivery.event_type,
        delivery_id=str(delivery.pk),
        attempt=number,
    )
    started = time.monotonic()
    try:
        response = webhook_transport.post(target, body, headers, timeout=conf.WEBHOOK_TIMEOUT)
    except TimeoutError:
        error = f"Timed out after {conf.WEBHOOK_TIMEOUT:g} s."
        return _Outcome(error=error, latency_ms=_since(started))
    except (OSError, http.client.HTTPException) as exc:
        return _Outcome(error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS], latency_ms=_since(started))
    error = "" if 200 <= response.status < 300 else f"HTTP {response.status}"  # noqa: PLR2004
    return _Outcome(response.status, error, response.excerpt, _since(started))


def _since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _record(delivery: WebhookDelivery, trigger: str, started_at: datetime, outcome: _Outcome) -> int:
    """The attempt's row and the delivery's new state; an automatic failure schedules the next try."""
    number = delivery.attempt_count + 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        trigger=trigger,
        started_at=started_at,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        error=outcome.error,
        response_excerpt=outcome.excerpt,
    )
    fields: dict[str, Any] = {"attempt_count": number, "claimed_until": None}
    if outcome.succeeded:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), next_attempt_at=None)
    elif trigger == AttemptTrigger.AUTOMATIC:
        retry_in = None if outcome.final else backoff(number)
        if retry_in is None:
            fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        else:
            fields["next_attempt_at"] = timezone.now() + timedelta(seconds=retry_in)
            pk = str(delivery.pk)
            transaction.on_commit(lambda: _send(pk, AttemptTrigger.AUTOMATIC, countdown=retry_in), robust=True)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
    return number


def backoff(attempts: int) -> float | None:
    """Seconds before the next automatic attempt after `attempts` failed ones; None: give up.

    BASE, 2 * BASE, 4 * BASE, ... capped at RETRY_MAX, for at most MAX_ATTEMPTS attempts."""
    conf = platform_settings()
    if attempts >= conf.WEBHOOK_MAX_ATTEMPTS:
        return None
    return float(min(conf.WEBHOOK_RETRY_BASE * 2 ** (attempts - 1), conf.WEBHOOK_RETRY_MAX))


def requeue_stalled(batch: int = 500) -> dict[str, int]:
    """Send again pending deliveries due for a while that no attempt took: a task lost by the
    broker, or a worker that died mid-attempt (its lease expired). A duplicate is harmless."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=platform_settings().WEBHOOK_REQUEUE_SECONDS)
    stalled = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=cutoff)
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .values_list("pk", flat=True)[:batch]
    )
    for pk in stalled:
        _send(str(pk), AttemptTrigger.AUTOMATIC)
    return {"requeued": len(stalled)}
