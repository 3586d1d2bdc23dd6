"""Opening approval requests, deciding them (API, admin, WebSocket) and expiring them.

A decision is one compare-and-set UPDATE on a pending request: of two concurrent
decisions exactly one wins, and the other gets 409. The rights are checked here, whatever
the channel.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonschema
from django.db import transaction
from django.utils import timezone

from agentplatform import jsonlimits
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, TargetType
from agentplatform.audit.services import record
from agentplatform.errors import InvalidInput
from agentplatform.users import User
from approvals import webhooks
from approvals.errors import AlreadyDecided, ApprovalExpired, InvalidArguments, NotAllowedToDecide
from approvals.models import COMMENT_MAX_CHARS, ApprovalRequest, ApprovalStatus, Channel, ExpiryAction, WebhookEvent
from approvals.registry import run_hooks
from tracing import spans

DECIDE_PERMISSION = "approvals.decide_approvalrequest"
DECIDE_SCOPE = "approvals:decide"


def arguments_hash(arguments: Any) -> str:
    """The SHA-256 of the arguments' canonical JSON: what an approval is bound to."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ProposedCall:
    call_id: str
    tool_name: str
    arguments: dict[str, Any]
    parameters: dict[str, Any]
    timeout: timedelta
    expiry_action: str = ExpiryAction.REJECT


def open_requests(*, run: Any, calls: Iterable[ProposedCall]) -> list[ApprovalRequest]:
    """One pending request per call (inside the caller's transaction, which pauses the run)."""
    now = timezone.now()
    rows = [
        ApprovalRequest(
            run=run,
            session_id=run.session_id,
            agent_id=run.agent_id,
            owner_id=run.owner_id,
            call_id=call.call_id,
            tool_name=call.tool_name,
            arguments=call.arguments,
            arguments_hash=arguments_hash(call.arguments),
            parameters=call.parameters,
            requested_at=now,
            expires_at=now + call.timeout,
            expiry_action=call.expiry_action,
        )
        for call in calls
    ]
    return ApprovalRequest.objects.bulk_create(rows)


@dataclass(frozen=True)
class Decider:
    """Who decides (the actor: the user, the key, from where), and through which channel.
    `scopes` are the API key's (None: not a key)."""

    actor: Actor
    channel: str
    scopes: tuple[str, ...] | None = None

    @property
    def user(self) -> User:
        assert self.actor.user is not None, "a decision is made by a user"
        return self.actor.user


def may_decide(decider: Decider, request: ApprovalRequest) -> bool:
    user = decider.user
    if not user.is_active:
        return False
    if decider.scopes is None:  # a person signed in: staff, verified by a second factor, with the permission
        verified = getattr(user, "is_verified", None)  # set by django-otp's middleware on a request's user
        return bool(user.is_staff and callable(verified) and verified() and user.has_perm(DECIDE_PERMISSION))
    return DECIDE_SCOPE in decider.scopes and (request.owner_id == user.pk or user.has_perm(DECIDE_PERMISSION))


def approve(request: ApprovalRequest, decider: Decider, arguments: Any = None, comment: str = "") -> ApprovalRequest:
    """Approve, as proposed or with edited `arguments` (validated against the tool's schema),
    with the reviewer's `comment` (for people: the model does not read it)."""
    approved = request.arguments if arguments is None else arguments
    if arguments is not None:
        _validate(approved, request.parameters)
    changes = {
        "approved_arguments": approved,
        "approved_hash": arguments_hash(approved),
        "diff": diff(request.arguments, approved),
        "comment": _comment(comment),
    }
    return _decide(request, decider, ApprovalStatus.APPROVED, changes)


def reject(request: ApprovalRequest, decider: Decider, reason: str, comment: str = "") -> ApprovalRequest:
    """Reject; the model reads `reason` as the tool's result and the run goes on. The
    `comment` is for people (the inbox, the API, webhooks), not the model."""
    return _decide(request, decider, ApprovalStatus.REJECTED, {"reason": reason.strip(), "comment": _comment(comment)})


def _comment(comment: str) -> str:
    comment = comment.strip()
    if len(comment) > COMMENT_MAX_CHARS:
        raise InvalidInput(
            f"comment: at most {COMMENT_MAX_CHARS} characters (this one has {len(comment)}).",
            details={"field": "comment", "max_length": COMMENT_MAX_CHARS},
        )
    return comment


def _decide(request: ApprovalRequest, decider: Decider, status: str, changes: dict[str, Any]) -> ApprovalRequest:
    if not may_decide(decider, request):
        raise NotAllowedToDecide(
            "Deciding needs verified staff with the 'decide' permission, or an API key with the "
            f"{DECIDE_SCOPE!r} scope on your own runs."
        )
    now = timezone.now()
    fields = {"status": status, "decided_by": decider.user, "decided_at": now, "channel": decider.channel, **changes}
    with transaction.atomic():
        won = ApprovalRequest.objects.filter(pk=request.pk, status=ApprovalStatus.PENDING, expires_at__gt=now)
        if not won.update(**fields):
            current = ApprovalRequest.objects.get(pk=request.pk)
            if current.status in (ApprovalStatus.PENDING, ApprovalStatus.EXPIRED):
                raise ApprovalExpired(f"The request expired at {current.expires_at.isoformat()}.")
            raise AlreadyDecided(f"The request is already {current.status}.", details={"status": current.status})
        request.refresh_from_db()
        _record(decider.actor, request)
        for hook in run_hooks.decided:
            hook(request)
        webhooks.emit_approvals(WebhookEvent.APPROVAL_DECIDED, [request])
        transaction.on_commit(lambda: spans.approval_waited(request), robust=True)
    return request


def _record(actor: Actor, request: ApprovalRequest) -> None:
    """The decision in the audit log: the proposed call before, the decision after."""
    approved = request.status == ApprovalStatus.APPROVED
    decision = (
        {"approved_arguments": request.approved_arguments, "diff": request.diff}
        if approved
        else {"reason": request.reason}
    )
    record(
        actor,
        Action.APPROVED if approved else Action.REJECTED,
        TargetType.APPROVAL,
        target_id=request.pk,
        target_label=f"{request.tool_name} (run {request.run_id})",
        before={"status": str(ApprovalStatus.PENDING), "arguments": request.arguments},
        after={"status": request.status, **decision, "comment": request.comment, "channel": request.channel},
    )


def expire_due(batch: int = 100) -> int:
    """Expire pending requests past their time; each one's expiry action then applies."""
    now = timezone.now()
    due = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=now)
    expired = 0
    for pk in list(due.values_list("pk", flat=True)[:batch]):
        with transaction.atomic():
            fields = {"status": ApprovalStatus.EXPIRED, "decided_at": now, "channel": Channel.EXPIRY}
            if ApprovalRequest.objects.filter(pk=pk, status=ApprovalStatus.PENDING).update(**fields):
                request = ApprovalRequest.objects.select_related("agent").get(pk=pk)
                record(
                    Actor.system("expire_approvals"),
                    Action.EXPIRED,
                    TargetType.APPROVAL,
                    target_id=request.pk,
                    target_label=f"{request.tool_name} (run {request.run_id})",
                    before={"status": str(ApprovalStatus.PENDING)},
                    after={"status": str(ApprovalStatus.EXPIRED), "expiry_action": str(request.expiry_action)},
                )
                for hook in run_hooks.expired:
                    hook(request)
                webhooks.emit_approvals(WebhookEvent.APPROVAL_EXPIRED, [request])
                transaction.on_commit(functools.partial(spans.approval_waited, request), robust=True)
                expired += 1
    return expired


def withdraw(run_id: Any) -> int:
    """The run ended without waiting for them: its pending requests are withdrawn."""
    pending = ApprovalRequest.objects.filter(run_id=run_id, status=ApprovalStatus.PENDING)
    return pending.update(status=ApprovalStatus.WITHDRAWN, decided_at=timezone.now())


def mark_executed(request_ids: list[str]) -> None:
    """The tools of these approved requests ran (exactly once: a request is executed once)."""
    if request_ids:
        ApprovalRequest.objects.filter(pk__in=request_ids, executed_at=None).update(executed_at=timezone.now())


def _validate(arguments: Any, schema: dict[str, Any]) -> None:
    """Edited arguments, held to the tool's schema strictly: an object schema that lists its
    properties admits no others unless it says so (`additionalProperties`), as the tool's own
    validation will not either; the JSON limits of any request apply too."""
    jsonlimits.check(arguments, field="arguments")
    if not isinstance(arguments, dict):
        raise InvalidArguments("Edited arguments must be a JSON object.", details={"field": "arguments"})
    try:
        jsonschema.validate(arguments, strict_schema(schema or {"type": "object"}))
    except jsonschema.ValidationError as exc:
        path = "/".join(str(part) for part in exc.absolute_path)
        raise InvalidArguments(f"{path or 'arguments'}: {exc.message}", details={"path": path}) from None


def strict_schema(schema: Any, *, in_all_of: bool = False) -> Any:
    """`schema` with `additionalProperties: false` on every object schema that lists its
    properties and says nothing of others (except the parts of an `allOf`, whose properties
    are listed across its parts)."""
    if isinstance(schema, list):
        return [strict_schema(item, in_all_of=in_all_of) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {
        key: value
        if key in ("properties", "enum", "const", "default", "examples")
        else strict_schema(value, in_all_of=key == "allOf")
        for key, value in schema.items()
    }
    if isinstance(schema.get("properties"), dict):
        strict["properties"] = {name: strict_schema(value) for name, value in schema["properties"].items()}
        if not in_all_of and "additionalProperties" not in schema and "patternProperties" not in schema:
            strict["additionalProperties"] = False
    return strict


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """What an edit changed, as JSON-pointer paths with the old and new values."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += diff(old.get(key, _MISSING), new.get(key, _MISSING), f"{path}/{key}")
        return changes
    if old == new:
        return []
    op = "add" if old is _MISSING else "remove" if new is _MISSING else "replace"
    return [{"op": op, "path": path or "/", "old": _shown(old), "new": _shown(new)}]


_MISSING = object()


def _shown(value: Any) -> Any:
    return None if value is _MISSING else value
