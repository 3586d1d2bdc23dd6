"""The Celery app. Queues and task names are named here, once.

Workers: `celery -A agentplatform.celery:app worker -Q runs,maintenance`.
"""

from __future__ import annotations

import os
from enum import StrEnum

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")


class Queue(StrEnum):
    RUNS = "runs"  # agent turns: long, I/O bound
    MAINTENANCE = "maintenance"  # periodic housekeeping


class TaskName(StrEnum):
    EXECUTE_RUN = "agents.execute_run"
    RESUME_RUN = "agents.resume_run"
    REAP_RUNS = "agents.reap_runs"
    EXPIRE_APPROVALS = "approvals.expire_approvals"


ROUTES = {
    TaskName.EXECUTE_RUN: {"queue": Queue.RUNS},
    TaskName.RESUME_RUN: {"queue": Queue.RUNS},
    TaskName.REAP_RUNS: {"queue": Queue.MAINTENANCE},
    TaskName.EXPIRE_APPROVALS: {"queue": Queue.MAINTENANCE},
}

app = Celery("agentplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {str(name): {"queue": str(route["queue"])} for name, route in ROUTES.items()}
app.autodiscover_tasks()
