"""Reads for A2A, scoped by the platform's own selectors: a caller's task is one of its runs,
of the agent whose endpoint it calls."""

from __future__ import annotations

from uuid import UUID

from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import TaskNotFoundError

from agentplatform.users import User
from agents import selectors
from agents.a2a_server import shapes
from agents.errors import RunNotFound
from agents.models import Run, RunStatus
from approvals.models import ApprovalRequest, ApprovalStatus


def task_run(owner: User, agent: str, task_id: str) -> Run:
    """The caller's run a task id names, at this agent; any other is not found."""
    pk = shapes.run_id(task_id)
    try:
        run = selectors.get_run(owner, pk) if pk is not None else None
    except RunNotFound:
        run = None
    if run is None or run.agent.name != agent:
        raise TaskNotFoundError(f"No task {task_id!r}.")
    return run


def pending_approvals(run_pk: UUID) -> list[str]:
    rows = ApprovalRequest.objects.filter(run_id=run_pk, status=ApprovalStatus.PENDING).order_by("requested_at", "id")
    return [str(pk) for pk in rows.values_list("pk", flat=True)]


def task(run_pk: UUID) -> a2a.Task:
    """The task as it is now."""
    run = Run.objects.get(pk=run_pk)
    return shapes.task(run, pending_approvals(run.pk) if run.status == RunStatus.AWAITING_APPROVAL else [])


def owned_task(owner: User, agent: str, task_id: str) -> a2a.Task:
    return task(task_run(owner, agent, task_id).pk)
