"""Leases: a running run belongs to the worker that renews its lease. The reaper fails runs
whose lease lapsed (their worker died) and hands stalled queued runs to the broker again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from agentplatform.conf import platform_settings
from agents.errors import RunFailure
from agents.models import HOLDING_RUN_STATUSES, Run, RunStatus
from agents.services.dispatch import send_run
from agents.services.endings import finish, outcome
from agents.services.record import RunRecord


def lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=platform_settings().RUN_LEASE_SECONDS)


def renew(run_ids: Iterable[UUID]) -> int:
    """Extend the leases of these running runs (one statement, whatever their number)."""
    return Run.objects.filter(pk__in=list(run_ids), status=RunStatus.RUNNING).update(lease_expires_at=lease_end())


def reap_expired_runs(batch: int = 100) -> dict[str, int]:
    """Fail running runs whose lease expired: their worker died or lost the database."""
    now = timezone.now()
    expired = list(
        Run.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)[:batch]
    )
    reaped = 0
    for run_id in expired:
        with transaction.atomic():
            run = Run.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run_id)
            if run.status != RunStatus.RUNNING or run.lease_expires_at is None or run.lease_expires_at >= now:
                continue  # finished or renewed since the query
            record = RunRecord.resume(run)
            message = "The worker executing this run stopped before finishing it (its lease expired)."
            details = {"lease_expired_at": run.lease_expires_at.isoformat()}
            finish(record, outcome(RunStatus.FAILED, RunFailure.WORKER_LOST, message, details))
            reaped += 1
    return {"expired": len(expired), "reaped": reaped, "requeued": _requeue_stalled(now, batch)}


def _requeue_stalled(now: datetime, batch: int) -> int:
    """Hand queued runs to the broker again when nothing took them: a broker that lost its
    data (or a crash between commit and send) must not leave a run queued forever. Only
    runs that could start now are sent, and a second delivery is harmless (the claim)."""
    stalled_since = now - timedelta(seconds=platform_settings().RUN_REQUEUE_SECONDS)
    earlier = Run.objects.filter(
        session_id=OuterRef("session_id"), status=RunStatus.QUEUED, created_at__lt=OuterRef("created_at")
    )
    running = Run.objects.filter(session_id=OuterRef("session_id"), status__in=HOLDING_RUN_STATUSES)
    stalled = list(
        Run.objects.filter(status=RunStatus.QUEUED, enqueued_at__lt=stalled_since)
        .filter(~Exists(earlier), ~Exists(running))
        .values_list("pk", flat=True)[:batch]
    )
    for run_id in stalled:
        send_run(run_id)
    return len(stalled)
