"""Reads for the OpenAI-compatible endpoints, scoped by the platform's own selectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from agentplatform.users import User
from agents import events, selectors
from agents.errors import RunNotFound
from agents.models import Run, RunEvent
from agents.openai_compat.shapes import ResponseNotFound, run_id
from approvals.models import ApprovalRequest, ApprovalStatus

if TYPE_CHECKING:
    from agents.services import Awaited


def response_run(owner: User, response: str) -> Run:
    """The caller's run a response id names; another owner's is not found."""
    try:
        return selectors.get_run(owner, run_id(response))
    except RunNotFound:
        raise ResponseNotFound(f"No response {response!r}.", details={"param": "response_id"}) from None


def stored_events(run_pk: UUID, upto: int | None = None) -> list[dict[str, Any]]:
    """The run's stored events in order (those up to sequence number `upto`)."""
    rows = RunEvent.objects.filter(run_id=run_pk).order_by("seq")
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [events.payload(row) for row in rows]


def previous_run(run: Run) -> UUID | None:
    """The run before it in its session: the response it continued."""
    earlier = Run.objects.filter(session_id=run.session_id, created_at__lt=run.created_at).order_by("-created_at")
    return earlier.values_list("pk", flat=True).first()


def fresh_run(run: Run | Awaited) -> Run:
    """The run as it is now (its agent as the caller has it)."""
    fresh = Run.objects.get(pk=run.pk)
    fresh.agent = run.agent
    return fresh


def pending_approvals(run_pk: UUID) -> list[str]:
    rows = ApprovalRequest.objects.filter(run_id=run_pk, status=ApprovalStatus.PENDING).order_by("requested_at", "id")
    return [str(pk) for pk in rows.values_list("pk", flat=True)]
