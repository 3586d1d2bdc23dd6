"""Celery adapters for runs and schedules: take an id, call one service."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from agentplatform.celery import TaskName, app
from agents import services


@app.task(name=TaskName.REAP_RUNS, expires=25)
def reap_runs() -> dict[str, int]:
    """Periodic: fail runs whose worker stopped renewing their lease (killed, lost)."""
    return services.reap_expired_runs()


@app.task(name=TaskName.RESUME_RUN, acks_late=True)
def resume_run(run_id: str) -> dict[str, Any]:
    """Continue a run whose approval requests have all been decided."""
    return services.resume_paused_run(UUID(run_id))


@app.task(name=TaskName.EXECUTE_RUN, acks_late=True)
def execute_run(run_id: str) -> dict[str, Any]:
    """Execute a queued run. Safe to deliver twice: only a queued run is claimed."""
    return services.execute_queued_run(UUID(run_id))


@app.task(name=TaskName.FIRE_SCHEDULE, bind=True)
def fire_schedule(self: Any, schedule_id: str) -> dict[str, Any]:
    """Beat fires an agent schedule: start its run or record why not. A redelivery fires once."""
    return services.fire_schedule(UUID(schedule_id), task_id=self.request.id or "")
