"""Handing runs to workers: a task on the broker once the transaction that made it commits."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

from agentplatform import notify
from agentplatform.celery import TaskName, app
from agents.models import Run


def send_run(run_id: UUID) -> None:
    """Hand a queued run to a worker (again) once the current transaction commits."""
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now())
    dispatch_on_commit(run_id)


def dispatch_on_commit(run_id: UUID) -> None:
    """Send the run's task to the broker when the current transaction commits."""
    transaction.on_commit(lambda: app.send_task(TaskName.EXECUTE_RUN, args=[str(run_id)]), robust=True)


def dispatch_resume_on_commit(run_id: UUID) -> None:
    """Send a paused run's resume to the broker when the current transaction commits. The
    done signal its pause raised is withdrawn first: a wait for the run from then on (a
    LangGraph join, say) waits for its next stop, not the pause."""
    transaction.on_commit(lambda: notify.withdraw_done(str(run_id)), robust=True)
    transaction.on_commit(lambda: app.send_task(TaskName.RESUME_RUN, args=[str(run_id)]), robust=True)
