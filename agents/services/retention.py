"""Retention: the rows the platform deletes once they are old enough (the `*_RETENTION_DAYS`
settings; 0 keeps them forever, the default). Beat runs it (`agents.purge_expired`), and
`manage.py purge_expired [--dry-run]` runs it once.

- A session goes once it has been idle for SESSION_RETENTION_DAYS: nothing happened in it
  since (its `updated_at`, which each run's last message, a rename or its creation sets, and
  no run started or finished since), it has no active run (queued, running, or awaiting
  approval), and no enabled schedule runs in it. It goes with everything it owns: runs,
  messages, run events, approval requests, idempotency keys, context injections. A session
  in use is never cut: each batch locks its sessions and checks all of this again, and a new
  run waits for that lock (then finds no session) or has taken it first (the session is kept).
- A finished run's events (its stream's replay, the bulk of the database) go once older than
  RUN_EVENT_RETENTION_DAYS; the run, its messages and its approvals stay.
- Webhook deliveries that are over (delivered or failed, no attempt in flight), with their
  attempts, go after WEBHOOK_DELIVERY_RETENTION_DAYS.
- A schedule's firings go after SCHEDULE_FIRING_RETENTION_DAYS, except its last one.
- Audit entries go after AUDIT_RETENTION_DAYS (the only way one is ever deleted).

Every deletion is batched (`agentplatform.purge`): RETENTION_BATCH_SIZE rows per statement,
each batch its own transaction. Run events go first (the cheapest walk through the most
rows); then a batch of sessions has the events of its finished runs that are left deleted
first, in batches of their own, so that its own transaction stays short (a session that a
new run takes between the two keeps its conversation, and loses only events of runs that
finished before the cutoff). Spans have their own TTL in ClickHouse (tracing.migrate).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from agentplatform.audit import services as audit_services
from agentplatform.audit.models import AuditEntry
from agentplatform.conf import platform_settings
from agentplatform.purge import delete_in_batches, delete_oldest
from agents.models import ACTIVE_RUN_STATUSES, Run, RunEvent, Schedule, ScheduleFiring, Session
from approvals import webhook_selectors

logger = logging.getLogger(__name__)


def purge_expired(*, dry_run: bool = False) -> dict[str, int]:
    """Delete what is past its retention; the rows deleted (or, dry run, that would be) by model."""
    conf, now = platform_settings(), timezone.now()
    batch, deleted = conf.RETENTION_BATCH_SIZE, Counter[str]()
    sessions = _cutoff(now, conf.SESSION_RETENTION_DAYS)
    # Events first: walking their ids is the cheapest way through the bulk of the rows, and
    # the sessions then owe few.
    if (events := _cutoff(now, conf.RUN_EVENT_RETENTION_DAYS)) is not None:
        deleted += _purge_events(events, batch, dry_run=dry_run, sessions=sessions)
    if sessions is not None:
        deleted += delete_in_batches(
            expired_sessions(sessions), batch=batch, dry_run=dry_run, bulk=lambda ids: _session_events(ids, sessions)
        )
    if (deliveries := _cutoff(now, conf.WEBHOOK_DELIVERY_RETENTION_DAYS)) is not None:
        deleted += delete_in_batches(webhook_selectors.settled_deliveries(deliveries), batch=batch, dry_run=dry_run)
    if (firings := _cutoff(now, conf.SCHEDULE_FIRING_RETENTION_DAYS)) is not None:
        deleted += delete_oldest(_past_firings(), written="created_at", cutoff=firings, batch=batch, dry_run=dry_run)
    if (audit := _cutoff(now, conf.AUDIT_RETENTION_DAYS)) is not None:
        deleted[AuditEntry._meta.label] += audit_services.delete_expired(audit, batch=batch, dry_run=dry_run)
    deleted = +deleted  # only what was deleted
    summary = dict(sorted(deleted.items()))
    logger.info(
        "retention%s: %s",
        " (dry run)" if dry_run else "",
        ", ".join(f"{count} {label}" for label, count in summary.items()) or "nothing expired",
    )
    return summary


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days else None


def _purge_events(cutoff: datetime, batch: int, *, dry_run: bool, sessions: datetime | None) -> Counter[str]:
    """Events of runs finished before `cutoff`, themselves older than it."""
    rows = RunEvent.objects.filter(run__finished_at__lt=cutoff)
    if dry_run and sessions is not None:
        # A dry run deletes no session: its events are counted with it, not here too.
        rows = rows.filter(~Exists(expired_sessions(sessions).filter(pk=OuterRef("run__session_id"))))
    return delete_oldest(rows, written="created_at", cutoff=cutoff, batch=batch, dry_run=dry_run)


def expired_sessions(cutoff: datetime) -> QuerySet[Session]:
    """Sessions idle since before `cutoff`, with no active run and no enabled schedule in them."""
    in_use = Run.objects.filter(session=OuterRef("pk")).filter(
        Q(status__in=ACTIVE_RUN_STATUSES) | Q(created_at__gte=cutoff) | Q(finished_at__gte=cutoff)
    )
    scheduled = Schedule.objects.filter(session=OuterRef("pk"), enabled=True)
    return Session.objects.filter(updated_at__lt=cutoff).filter(~Exists(in_use), ~Exists(scheduled))


def _session_events(session_ids: list[Any], cutoff: datetime) -> QuerySet[RunEvent]:
    """The events of these sessions' runs that finished before `cutoff`: all of them, unless a
    run started in one of them since they were selected."""
    return RunEvent.objects.filter(run__session_id__in=session_ids, run__finished_at__lt=cutoff)


def _past_firings() -> QuerySet[ScheduleFiring]:
    """Firings that are not their schedule's last (the admin shows when it last fired)."""
    return ScheduleFiring.objects.filter(~Exists(Schedule.objects.filter(last_firing=OuterRef("pk"))))
