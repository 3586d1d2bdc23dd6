"""The Celery app. Queues and task names are named here, once.

Workers: `celery -A agentplatform.celery:app worker -Q runs,maintenance,schedules,webhooks`.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from agentplatform import beat_thread, heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")


class Queue(StrEnum):
    RUNS = "runs"  # agent turns: long, I/O bound
    MAINTENANCE = "maintenance"  # periodic housekeeping
    SCHEDULES = "schedules"  # agent schedules firing: short, starts runs
    WEBHOOKS = "webhooks"  # webhook deliveries: one HTTP POST each, short timeout, retried with backoff


class TaskName(StrEnum):
    EXECUTE_RUN = "agents.execute_run"
    RESUME_RUN = "agents.resume_run"
    REAP_RUNS = "agents.reap_runs"
    EXPIRE_APPROVALS = "approvals.expire_approvals"
    FIRE_SCHEDULE = "agents.fire_schedule"
    DELIVER_WEBHOOK = "approvals.deliver_webhook"
    REQUEUE_WEBHOOKS = "approvals.requeue_webhooks"
    PURGE_EXPIRED = "agents.purge_expired"


ROUTES = {
    TaskName.EXECUTE_RUN: {"queue": Queue.RUNS},
    TaskName.RESUME_RUN: {"queue": Queue.RUNS},
    TaskName.REAP_RUNS: {"queue": Queue.MAINTENANCE},
    TaskName.EXPIRE_APPROVALS: {"queue": Queue.MAINTENANCE},
    TaskName.FIRE_SCHEDULE: {"queue": Queue.SCHEDULES},
    TaskName.DELIVER_WEBHOOK: {"queue": Queue.WEBHOOKS},
    TaskName.REQUEUE_WEBHOOKS: {"queue": Queue.MAINTENANCE},
    TaskName.PURGE_EXPIRED: {"queue": Queue.MAINTENANCE},
}

app = Celery("agentplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {str(name): {"queue": str(route["queue"])} for name, route in ROUTES.items()}
app.autodiscover_tasks()
beat_thread.install(app)  # `worker --beat-thread`: the embedded topology's beat


@worker_ready.connect
def _settle_heap(**_: Any) -> None:
    heap.settle()  # the worker has loaded everything it runs with (agentplatform.heap)
