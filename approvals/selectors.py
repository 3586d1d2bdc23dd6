"""Reads of approval requests, scoped to what a caller may see."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Model, QuerySet

from agentplatform.users import User
from approvals.errors import ApprovalNotFound
from approvals.models import ApprovalRequest, ApprovalStatus


def owned_requests(owner: User) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(owner=owner).select_related("agent", "decided_by")


def get_request(owner: User, request_id: UUID | str) -> ApprovalRequest:
    try:
        return owned_requests(owner).get(pk=request_id)
    except (ApprovalRequest.DoesNotExist, ValueError):
        raise ApprovalNotFound(f"No approval request {request_id}.") from None


def run_requests(run_id: UUID) -> list[ApprovalRequest]:
    return list(ApprovalRequest.objects.filter(run_id=run_id).order_by("requested_at", "call_id"))


def pending_ids(session_id: UUID) -> list[str]:
    rows = ApprovalRequest.objects.filter(session_id=session_id, status=ApprovalStatus.PENDING)
    return [str(pk) for pk in rows.order_by("requested_at", "id").values_list("pk", flat=True)]


def has_pending(run_id: UUID) -> bool:
    return ApprovalRequest.objects.filter(run_id=run_id, status=ApprovalStatus.PENDING).exists()


def pending_count() -> int:
    """How many requests wait for a decision (one COUNT, served by an index on status)."""
    return ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count()


def tool_names() -> list[str]:
    """The names of every agent's tools, for the inbox's filter. Read through the requests'
    agent relation: approvals does not import agents."""
    agents = ApprovalRequest._meta.get_field("agent").related_model
    assert isinstance(agents, type)
    assert issubclass(agents, Model)
    rows = agents._default_manager.filter(tool_rows__isnull=False).values_list("tool_rows__name", flat=True)
    return sorted(set(rows))


def conversation(request: ApprovalRequest, limit: int) -> tuple[list[Any], int]:
    """The session's messages up to the assistant turn that proposed the call (the last `limit`,
    oldest first) and how many messages lead up to it."""
    messages = request.session.messages.all()
    position = _call_position(request)
    if position is not None:
        leading = messages.filter(position__lte=position)
    else:  # not on record as a message: what the session held when the call was proposed
        leading = messages.filter(created_at__lte=request.requested_at)
    shown = list(leading.order_by("-position")[:limit])
    shown.reverse()
    total = position + 1 if position is not None else leading.count()
    return shown, total


def _call_position(request: ApprovalRequest) -> int | None:
    """The position of the run's assistant message that holds this call (a run has a few)."""
    turns = request.session.messages.filter(run_id=request.run_id, role="assistant")
    for position, calls in turns.values_list("position", "tool_calls"):
        if any(isinstance(call, dict) and call.get("id") == request.call_id for call in calls or []):
            return int(position)
    return None
