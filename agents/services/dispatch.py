"""Handing runs to workers: a task on the broker once the transaction that made it commits."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.utils import timezone

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
    transaction.on_commit(lambda: app.send_task(TaskName.RESUME_RUN, args=[str(run_id)]), robust=True)
