"""Celery adapters for runs and schedules: take an id, hand over or call one service.

A run's task does not execute it: it waits for a free slot on this process's engine (the
back-pressure: a busy worker leaves the broker holding the rest), hands the run over, and
returns. The run's lease, renewed by the engine, keeps it durable from there.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from celery.signals import worker_shutdown

from agentplatform.celery import TaskName, app
from agentplatform.conf import platform_settings
from agents import services
from agents.engine import engine, started_engine

logger = logging.getLogger(__name__)


@app.task(name=TaskName.REAP_RUNS, expires=25)
def reap_runs() -> dict[str, int]:
    """Periodic: fail runs whose worker stopped renewing their lease (killed, lost)."""
    return services.reap_expired_runs()


@app.task(name=TaskName.PURGE_EXPIRED)
def purge_expired() -> dict[str, int]:
    """Periodic: delete sessions, run events, webhook deliveries and schedule firings past their
    retention, in batches (each one short transaction); the counts deleted, by model."""
    return services.purge_expired()


@app.task(name=TaskName.RESUME_RUN, acks_late=True, bind=True, max_retries=None)
def resume_run(self: Any, run_id: str) -> None:
    """Continue a run whose approval requests have all been decided."""
    _hand_over(self, lambda rt: services.resume(UUID(run_id), rt), run_id)


@app.task(name=TaskName.EXECUTE_RUN, acks_late=True, bind=True, max_retries=None)
def execute_run(self: Any, run_id: str) -> None:
    """Execute a queued run. Safe to deliver twice: only a queued run is claimed."""
    _hand_over(self, lambda rt: services.execute(UUID(run_id), rt), run_id)


def _hand_over(task: Any, work: Any, run_id: str) -> None:
    """Nothing is returned: Celery would format a result for its log line on every run (a
    millisecond of the worker's CPU), and the run's outcome is in the database anyway."""
    if not engine().submit(work, wait=platform_settings().RUN_SLOT_WAIT):
        # Every slot is taken: back to the broker, so that this thread serves other queues.
        logger.info("run %s: every run slot of this worker is taken; back to the broker for 1 s", run_id)
        raise task.retry(countdown=1)


@app.task(name=TaskName.FIRE_SCHEDULE, bind=True)
def fire_schedule(self: Any, schedule_id: str) -> dict[str, Any]:
    """Beat fires an agent schedule: start its run or record why not. A redelivery fires once."""
    return services.fire_schedule(UUID(schedule_id), task_id=self.request.id or "")


@worker_shutdown.connect
def _drain(**_: Any) -> None:
    """A worker stopping (SIGTERM) lets the runs it carries finish before it exits."""
    running = started_engine()
    if running is not None and not running.drain(platform_settings().WORKER_DRAIN_SECONDS):
        # What is left keeps its lease until it lapses; the reaper then ends those runs.
        logger.warning("stopping with %d runs still in flight", running.in_flight)
