"""Schedules: kept in step with the beat's `PeriodicTask`, and fired into runs."""

from __future__ import annotations

import functools
import json
import zoneinfo
from typing import Any
from uuid import UUID

from celery.schedules import ParseException, crontab
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.validators import crontab_validator

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import TargetType
from agentplatform.audit.services import as_stored, record_change, snapshot
from agentplatform.celery import TaskName
from agentplatform.conf import platform_settings
from agentplatform.errors import PlatformError
from agentplatform.users import User
from agents import selectors
from agents.errors import (
    InputTooLarge,
    InvalidSchedule,
    SessionBusy,
)
from agents.models import (
    ACTIVE_RUN_STATUSES,
    Agent,
    ApiKey,
    FiringOutcome,
    IfBusy,
    OverlapPolicy,
    Run,
    Schedule,
    ScheduleFiring,
    Session,
    SessionStrategy,
)
from agents.services.keys import ensure_usable
from agents.services.runs import start_run

MIN_INTERVAL_SECONDS = 10
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
CRON_FIRING_EXPIRES_SECONDS = 60  # cron's resolution: a firing later than this overlaps the next one
# What a caller may set; the rest (owner, key, beat's row, the last firing) belongs to the platform.
EDITABLE_FIELDS = [
    "name",
    "agent",
    "input",
    "metadata",
    "cron",
    "timezone",
    "interval_seconds",
    "session_strategy",
    "session",
    "overlap",
    "enabled",
    "ends_at",
]
AUDITED_FIELDS = ("owner", *EDITABLE_FIELDS)


def create_schedule(
    *,
    owner: User,
    api_key: ApiKey | None,
    actor: Actor,
    agent: Agent,
    session_id: UUID | None = None,
    **fields: Any,
) -> Schedule:
    schedule = Schedule(owner=owner, api_key=api_key, agent=agent, **fields)
    schedule.session = _owned_session(owner, session_id)
    return save_schedule(schedule, actor=actor)


def update_schedule(owner: User, schedule_id: UUID | str, changes: dict[str, Any], *, actor: Actor) -> Schedule:
    """Apply the fields given (`session_id`: a session of the owner's, or None) and save."""
    changes = dict(changes)
    with transaction.atomic():
        schedule = selectors.lock_schedule(owner, schedule_id)
        if "session_id" in changes:
            schedule.session = _owned_session(owner, changes.pop("session_id"))
        elif changes.get("session_strategy") == SessionStrategy.NEW:
            schedule.session = None
        for name, value in changes.items():
            setattr(schedule, name, value)
        return save_schedule(schedule, actor=actor)


def save_schedule(schedule: Schedule, *, actor: Actor) -> Schedule:
    """Check the schedule, then write it, beat's row for it and the audit entry in one transaction.

    Beat (django-celery-beat's DatabaseScheduler) notices the change within seconds. The
    fields a firing writes (the last firing) are not written back from a stale instance.
    """
    check_schedule(schedule)
    with transaction.atomic():
        adding = schedule._state.adding
        before = as_stored(schedule, AUDITED_FIELDS)
        schedule.periodic_task = _sync_periodic_task(schedule)
        schedule.save(update_fields=None if adding else [*EDITABLE_FIELDS, "periodic_task", "updated_at"])
        record_change(actor, TargetType.SCHEDULE, schedule, before, snapshot(schedule, AUDITED_FIELDS))
    return schedule


def delete_schedule(schedule: Schedule, *, actor: Actor) -> None:
    """Delete the schedule and beat's row; its runs stay (no longer linked to it)."""
    with transaction.atomic():
        record_change(actor, TargetType.SCHEDULE, schedule, snapshot(schedule, AUDITED_FIELDS), None)
        PeriodicTask.objects.filter(agent_schedule__pk=schedule.pk).delete()
        schedule.delete()


def check_schedule(schedule: Schedule) -> None:
    """Raise InvalidSchedule naming the first field that is wrong."""
    _check_timing(schedule)
    if schedule.timezone not in zoneinfo_names():
        raise InvalidSchedule("timezone", f"{schedule.timezone!r} is not an IANA time zone, e.g. Europe/Paris.")
    if schedule.enabled and schedule.ends_at is not None and schedule.ends_at <= timezone.now():
        raise InvalidSchedule("ends_at", "An enabled schedule's end date must be in the future.")
    if not schedule.input.strip():
        raise InvalidSchedule("input", "This field may not be blank.")
    limit = platform_settings().MAX_INPUT_CHARS
    if len(schedule.input) > limit:
        raise InputTooLarge(
            f"input is {len(schedule.input)} characters; the limit is {limit}.", details={"limit": limit}
        )
    _check_session(schedule)


def _check_timing(schedule: Schedule) -> None:
    if schedule.cron and schedule.interval_seconds is not None:
        raise InvalidSchedule("interval_seconds", "Give cron or interval_seconds, not both.")
    if schedule.cron:
        _check_cron(schedule.cron)
    elif schedule.interval_seconds is None:
        raise InvalidSchedule("cron", "Give cron (with timezone) or interval_seconds.")
    elif not MIN_INTERVAL_SECONDS <= schedule.interval_seconds <= MAX_INTERVAL_SECONDS:
        raise InvalidSchedule("interval_seconds", f"Must be {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS} seconds.")


def _check_cron(expression: str) -> None:
    """Five fields that django-celery-beat stores and celery's own parser (what beat runs) reads."""
    parts = expression.split()
    if len(parts) != len(CRON_FIELDS):
        raise InvalidSchedule("cron", "Expected 5 fields: minute hour day-of-month month day-of-week.")
    for name, part in zip(CRON_FIELDS, parts, strict=True):
        if len(part) > CrontabSchedule._meta.get_field(name).max_length:
            raise InvalidSchedule("cron", f"The {name.replace('_', ' ')} field is too long.")
    try:
        crontab_validator(" ".join(parts))
        crontab(**dict(zip(CRON_FIELDS, parts, strict=True)))
    except ValidationError as exc:
        raise InvalidSchedule("cron", f"{expression!r} is not a valid cron expression: {exc.messages[0]}") from None
    except (ValueError, ParseException) as exc:
        raise InvalidSchedule("cron", f"{expression!r} is not a valid cron expression: {exc}") from None


@functools.cache
def zoneinfo_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_session(schedule: Schedule) -> None:
    session = schedule.session
    if session is None:
        return
    if schedule.session_strategy != SessionStrategy.FIXED:
        raise InvalidSchedule("session_id", "A session is used only with session_strategy 'fixed'.")
    if session.owner_id != schedule.owner_id:
        raise InvalidSchedule("session_id", f"No session {session.pk} of the schedule's owner.")
    if session.agent_id != schedule.agent_id:
        raise InvalidSchedule("session_id", f"Session {session.pk} belongs to another agent.")


def _owned_session(owner: User, session_id: UUID | None) -> Session | None:
    if session_id is None:
        return None
    session = Session.objects.filter(pk=session_id, owner=owner).first()
    if session is None:
        raise InvalidSchedule("session_id", f"No session {session_id} of yours.")
    return session


def _sync_periodic_task(schedule: Schedule) -> PeriodicTask:
    """Beat's row for the schedule, written to match it (saving it tells beat to reload)."""
    task = schedule.periodic_task or PeriodicTask(name=f"agent-schedule:{schedule.pk}", task=TaskName.FIRE_SCHEDULE)
    task.args = json.dumps([str(schedule.pk)])
    task.description = schedule.name
    task.enabled = schedule.enabled
    task.interval = _interval(schedule.interval_seconds) if schedule.interval_seconds is not None else None
    task.crontab = _crontab(schedule.cron, schedule.timezone) if schedule.cron else None
    task.expire_seconds = schedule.interval_seconds or CRON_FIRING_EXPIRES_SECONDS  # a stale firing is dropped
    task.save()
    return task


def _interval(seconds: int) -> IntervalSchedule:
    # Shared rows (beat's settings entries reuse them too), so they are looked up and never deleted.
    spec = {"every": seconds, "period": IntervalSchedule.SECONDS}
    return IntervalSchedule.objects.filter(**spec).first() or IntervalSchedule.objects.create(**spec)


def _crontab(expression: str, tz: str) -> CrontabSchedule:
    spec: dict[str, Any] = dict(zip(CRON_FIELDS, expression.split(), strict=True))
    spec["timezone"] = zoneinfo.ZoneInfo(tz)
    return CrontabSchedule.objects.filter(**spec).first() or CrontabSchedule.objects.create(**spec)


def fire_schedule(schedule_id: UUID, *, task_id: str = "") -> dict[str, Any]:
    """Beat fired the schedule: start its run, or record why not. A small summary for the task.

    The schedule's row lock serializes firings of one schedule, so the overlap check holds,
    and a task id seen before (a redelivered message) fires nothing.
    """
    summary: dict[str, Any] = {"schedule_id": str(schedule_id), "outcome": None, "run_id": None}
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(of=("self",))
            .select_related("agent", "owner", "api_key")
            .filter(pk=schedule_id)
            .first()
        )
        if schedule is None or not schedule.enabled:
            return summary  # deleted or disabled after beat sent it
        if task_id and ScheduleFiring.objects.filter(task_id=task_id).exists():
            return {**summary, "outcome": "duplicate"}
        firing = _fire(schedule)
        firing.schedule, firing.task_id = schedule, task_id
        firing.save()
        Schedule.objects.filter(pk=schedule.pk).update(last_firing=firing)
    return {**summary, "outcome": firing.outcome, "run_id": str(firing.run_id) if firing.run_id else None}


def _fire(schedule: Schedule) -> ScheduleFiring:
    """The firing's outcome (unsaved): the run started, or why there is none."""
    if schedule.ends_at is not None and timezone.now() >= schedule.ends_at:
        schedule.enabled = False
        schedule.save(update_fields=["enabled", "updated_at"])
        record_change(
            Actor.system("schedule end"), TargetType.SCHEDULE, schedule, {"enabled": True}, {"enabled": False}
        )
        _sync_periodic_task(schedule)
        return ScheduleFiring(outcome=FiringOutcome.ENDED)
    skip = schedule.overlap == OverlapPolicy.SKIP
    if skip:
        active = Run.objects.filter(schedule=schedule, status__in=ACTIVE_RUN_STATUSES).order_by("created_at").first()
        if active is not None:
            message = f"Run {active.pk} of this schedule is still {active.status}."
            error = {"code": "run_still_active", "message": message, "details": {"run_id": str(active.pk)}}
            return ScheduleFiring(outcome=FiringOutcome.SKIPPED, run=active, error=error)
    fixed = schedule.session_strategy == SessionStrategy.FIXED
    try:
        _check_caller(schedule)
        run = start_run(
            owner=schedule.owner,
            api_key=schedule.api_key,
            agent_name=schedule.agent.name,
            input=schedule.input,
            session_id=schedule.session_id if fixed else None,
            metadata=schedule.metadata,
            if_busy=IfBusy.REJECT if skip else IfBusy.ENQUEUE,
            schedule=schedule,
        )
    except SessionBusy as exc:  # the fixed session is busy with a run from elsewhere
        return ScheduleFiring(outcome=FiringOutcome.SKIPPED, run_id=exc.details["run_id"], error=_error(exc))
    except PlatformError as exc:  # the agent is disabled, the key revoked, ...: recorded, beat goes on
        return ScheduleFiring(outcome=FiringOutcome.FAILED, error=_error(exc))
    if fixed and schedule.session_id != run.session_id:  # the first firing's session becomes the fixed one
        Schedule.objects.filter(pk=schedule.pk).update(session_id=run.session_id)
    return ScheduleFiring(outcome=FiringOutcome.STARTED, run=run)


def _error(exc: PlatformError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "details": exc.details}


def _check_caller(schedule: Schedule) -> None:
    """The owner and the key the schedule was made with must still be good, as for a request."""
    ensure_usable(schedule.owner, schedule.api_key)
