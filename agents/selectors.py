"""Reads, with the joins they need, scoped to what a caller may see."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from agentplatform import sql
from agentplatform.users import User
from agents.errors import AgentNotFound, RunNotFound, ScheduleNotFound, SessionNotFound
from agents.models import (
    ACTIVE_RUN_STATUSES,
    Agent,
    ApiKey,
    IdempotencyKey,
    Message,
    OwnerLimits,
    Run,
    RunEvent,
    RunStatus,
    Schedule,
    ScheduleFiring,
    Session,
    Tool,
)


def visible_agents(api_key: ApiKey | None) -> QuerySet[Agent]:
    """Agents a caller may use: all of them, or the ones its key is restricted to."""
    agents = Agent.objects.filter(registered=True)
    restricted_to = _restricted_to(api_key)
    return agents.filter(pk__in=restricted_to) if restricted_to else agents


def key_with_user(key_hash: str) -> ApiKey | None:
    """The API key with this hash, its user and the user's limits loaded: read on every request made with a key
    (SQL, see `agentplatform.sql`)."""
    found = sql.rows(_key_sql(), sql.values(ApiKey, ("key_hash", key_hash)))
    if not found:
        return None
    row = found[0]
    api_key = sql.instance(ApiKey, row)
    api_key.user = _with_limits(row, len(ApiKey._meta.concrete_fields))
    return api_key


@functools.cache
def _key_sql() -> str:
    users = get_user_model()
    return (
        f"SELECT {sql.columns(ApiKey, 'k')}, {sql.columns(users, 'u')}, {sql.columns(OwnerLimits, 'o')}"  # noqa: S608
        f" FROM {sql.table(ApiKey)} k JOIN {sql.table(users)} u ON u.id = k.user_id"
        f" LEFT JOIN {sql.table(OwnerLimits)} o ON o.user_id = u.id WHERE k.key_hash = %s"
    )


def get_agent(name: str, api_key: ApiKey | None, *, with_tools: bool = False) -> Agent:
    """The agent, if the caller's key may use it.

    On the path of every run: two plain statements written as SQL (the agent, then the key's
    restriction; see `agentplatform.sql`), not one query with a subquery built by the ORM.
    """
    if "\x00" in name or len(name) > Agent._meta.get_field("name").max_length:  # type: ignore[operator]
        # No agent is named so, and PostgreSQL refuses NUL in a parameter (a name from a URL path)
        raise AgentNotFound(f"No agent named {name[:100]!r}.")
    if with_tools:
        agent = Agent.objects.filter(registered=True).prefetch_related("tool_rows").filter(name=name).first()
    else:
        params = sql.values(Agent, ("registered", True), ("name", name))
        agent = next(iter(sql.instances(Agent, _agent_sql(), params)), None)
    restricted_to = _restricted_to(api_key) if agent is not None else []
    if agent is None or (restricted_to and agent.pk not in restricted_to):
        raise AgentNotFound(f"No agent named {name[:100]!r}.")
    return agent


@functools.cache
def _agent_sql() -> str:
    return f"SELECT {sql.columns(Agent)} FROM {sql.table(Agent)} WHERE registered = %s AND name = %s"  # noqa: S608


def _restricted_to(api_key: ApiKey | None) -> list[int]:
    """The agents a key is restricted to; none: it may use them all."""
    if api_key is None:
        return []
    through = ApiKey.agents.through
    return [agent_id for (agent_id,) in sql.rows(_restriction_sql(), sql.values(through, ("apikey", api_key.pk)))]


@functools.cache
def _restriction_sql() -> str:
    return f"SELECT agent_id FROM {sql.table(ApiKey.agents.through)} WHERE apikey_id = %s"  # noqa: S608


def tool_policies(agent: Agent) -> dict[str, tuple[str, list[Any]]]:
    """Operators' per-tool permission overrides and argument conditions, read fresh for every
    run (SQL, see `agentplatform.sql`)."""
    rows = sql.rows(_tool_policies_sql(), sql.values(Tool, ("agent", agent.pk)))
    policies = ((name, override, sql.convert(Tool, "conditions", rules)) for name, override, rules in rows)
    return {name: (override, rules) for name, override, rules in policies if override or rules}


@functools.cache
def _tool_policies_sql() -> str:
    return f"SELECT name, permission_override, conditions FROM {sql.table(Tool)} WHERE agent_id = %s"  # noqa: S608


def approval_policies(agent: Agent) -> dict[str, tuple[timedelta | None, str]]:
    """Per-tool approval timeouts and expiry actions set by operators (blank: the agent's)."""
    rows = Tool.objects.filter(agent=agent).exclude(approval_timeout=None, approval_expiry_action="")
    return {
        name: (timeout, action)
        for name, timeout, action in rows.values_list("name", "approval_timeout", "approval_expiry_action")
    }


def owned_sessions(owner: User) -> QuerySet[Session]:
    return Session.objects.filter(owner=owner).select_related("agent")


def get_session(owner: User, session_id: UUID | str) -> Session:
    """The caller's session, its agent loaded: read on every request about a session (SQL,
    see `agentplatform.sql`)."""
    params = _session_key(owner, session_id)
    found = sql.rows(_session_sql(), params) if params is not None else []
    if not found:
        raise SessionNotFound(f"No session {session_id}.")
    session = sql.instance(Session, found[0])
    session.agent = sql.instance(Agent, found[0], start=len(Session._meta.concrete_fields))
    return session


def owned_session_id(owner: User, session_id: UUID | str) -> UUID:
    """The id of the caller's session, or SessionNotFound: for a read that needs no more of it
    (a history page), one statement that makes no instance."""
    params = _session_key(owner, session_id)
    if params is None or not sql.rows(_owned_session_sql(), params):
        raise SessionNotFound(f"No session {session_id}.")
    return UUID(str(session_id))


def _session_key(owner: User, session_id: UUID | str) -> list[Any] | None:
    """The parameters that find the caller's session (id, owner), or None for an id no session has."""
    try:
        return sql.values(Session, ("id", session_id), ("owner", owner.pk))
    except (ValidationError, ValueError):
        return None


@functools.cache
def _owned_session_sql() -> str:
    return f"SELECT 1 FROM {sql.table(Session)} WHERE id = %s AND owner_id = %s"  # noqa: S608


@functools.cache
def _session_sql() -> str:
    return (
        f"SELECT {sql.columns(Session, 's')}, {sql.columns(Agent, 'a')} FROM {sql.table(Session)} s"  # noqa: S608
        f" JOIN {sql.table(Agent)} a ON a.id = s.agent_id WHERE s.id = %s AND s.owner_id = %s"
    )


def lock_session(owner: User, session_id: UUID | str) -> Session:
    """The caller's session, locked for the rest of the transaction."""
    try:
        return Session.objects.select_for_update().get(pk=session_id, owner=owner)
    except (Session.DoesNotExist, ValueError):
        raise SessionNotFound(f"No session {session_id}.") from None


def claimed_run(run_id: UUID) -> tuple[Run, int]:
    """A run with its agent, API key and owner (with their limits), and its session's message count (where its messages
    start): one join, on every run's path (SQL, see `agentplatform.sql`)."""
    row = sql.rows(_claimed_run_sql(), [sql.value(Run, "id", run_id)])[0]
    run = sql.instance(Run, row)
    width = len(Run._meta.concrete_fields)
    run.agent = sql.instance(Agent, row, start=width)
    start = width + len(Agent._meta.concrete_fields)
    if run.api_key_id is not None:  # its limits, and its owner's, say whether the run's end is counted
        run.api_key = sql.instance(ApiKey, row, start=start)
    start += len(ApiKey._meta.concrete_fields)
    run.owner = _with_limits(row, start)
    return run, int(row[-1])


def _with_limits(row: Any, start: int) -> Any:
    """The user in `row[start:]`, then their `OwnerLimits` (or none) cached on them."""
    users = get_user_model()
    user = sql.instance(users, row, start=start)
    start += len(users._meta.concrete_fields)
    owner_limits = sql.instance(OwnerLimits, row, start=start) if row[start] is not None else None
    relation: Any = users._meta.get_field("owner_limits")
    relation.set_cached_value(user, owner_limits)
    return user


@functools.cache
def _claimed_run_sql() -> str:
    users = get_user_model()
    return (
        f"SELECT {sql.columns(Run, 'r')}, {sql.columns(Agent, 'a')}, {sql.columns(ApiKey, 'k')},"  # noqa: S608
        f" {sql.columns(users, 'u')}, {sql.columns(OwnerLimits, 'o')}, s.message_count"
        f" FROM {sql.table(Run)} r JOIN {sql.table(Agent)} a ON a.id = r.agent_id"
        f" JOIN {sql.table(Session)} s ON s.id = r.session_id JOIN {sql.table(users)} u ON u.id = r.owner_id"
        f" LEFT JOIN {sql.table(OwnerLimits)} o ON o.user_id = r.owner_id"
        f" LEFT JOIN {sql.table(ApiKey)} k ON k.id = r.api_key_id WHERE r.id = %s"
    )


def next_queued(session_id: UUID) -> UUID | None:
    """The session's oldest queued run, which starts when the running one ends."""
    found = sql.rows(_next_queued_sql(), sql.values(Run, ("session", session_id), ("status", RunStatus.QUEUED.value)))
    return sql.convert(Run, "id", found[0][0]) if found else None


@functools.cache
def _next_queued_sql() -> str:
    table = sql.table(Run)
    return f"SELECT id FROM {table} WHERE session_id = %s AND status = %s ORDER BY created_at LIMIT 1"  # noqa: S608


def next_position(session_id: UUID) -> int:
    """The position after the session's last message (one step down the unique index)."""
    positions = Message.objects.filter(session_id=session_id).order_by("-position").values_list("position", flat=True)
    last = positions.first()
    return 0 if last is None else last + 1


def last_seq(run_id: UUID) -> int:
    """The sequence number of a run's last event (0 before the first)."""
    seq = RunEvent.objects.filter(run_id=run_id).order_by("-seq").values_list("seq", flat=True).first()
    return seq or 0


def lock_run(owner: User, run_id: UUID | str) -> Run:
    try:
        return Run.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run_id, owner=owner)
    except (Run.DoesNotExist, ValueError):
        raise RunNotFound(f"No run {run_id}.") from None


def idempotent_run(owner: User, key: str) -> tuple[Run, str] | None:
    """The run an earlier request with this key created, and that request's fingerprint."""
    row = IdempotencyKey.objects.select_related("run__agent").filter(owner=owner, key=key).first()
    return (row.run, row.request_hash) if row is not None else None


def owned_runs(owner: User) -> QuerySet[Run]:
    return Run.objects.filter(owner=owner).select_related("agent")


def get_run(owner: User, run_id: UUID | str) -> Run:
    try:
        return owned_runs(owner).get(pk=run_id)
    except (Run.DoesNotExist, ValueError):
        raise RunNotFound(f"No run {run_id}.") from None


def session_messages(session: Session) -> QuerySet[Message]:
    return Message.objects.filter(session=session)


def message_history(session_id: UUID) -> sql.Keyset[Message]:
    """A session's messages for its history pages: each page one statement (`sql.Keyset`)."""
    return sql.Keyset(Message, (("session", session_id),))


def recent_messages(session_id: UUID, *, before_position: int, limit: int) -> list[Message]:
    """The last `limit` messages before a position, oldest first (one indexed range scan)."""
    rows = list(
        Message.objects.filter(session_id=session_id, position__lt=before_position).order_by("-position")[:limit]
    )
    rows.reverse()
    return rows


def run_events_after(run_id: UUID, after: int, limit: int) -> tuple[list[RunEvent], str]:
    """The next `limit` events of a run after sequence number `after`, and the run's status."""
    status = Run.objects.values_list("status", flat=True).get(pk=run_id)
    return list(RunEvent.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")[:limit]), status


def run_with_messages(run_id: UUID) -> tuple[Run, list[Message]]:
    """A run as it is now, and its messages in order: how a run waited for is answered
    (two plain statements as SQL, see `agentplatform.sql`)."""
    key = [sql.value(Run, "id", run_id)]
    return sql.instances(Run, _run_sql(), key)[0], sql.instances(Message, _run_messages_sql(), key)


@functools.cache
def _run_sql() -> str:
    return f"SELECT {sql.columns(Run)} FROM {sql.table(Run)} WHERE id = %s"  # noqa: S608


@functools.cache
def _run_messages_sql() -> str:
    return f"SELECT {sql.columns(Message)} FROM {sql.table(Message)} WHERE run_id = %s ORDER BY position"  # noqa: S608


def run_messages(run: Run) -> QuerySet[Message]:
    return Message.objects.filter(run=run).order_by("position")


def session_events_after(
    session_id: UUID, since: datetime, last: dict[str, int], *, exclude: set[str], limit: int = 500
) -> list[RunEvent]:
    """A session's events a follower has not had: those after `last[run]` for the runs it
    follows, and every event of the session's other runs created since `since`; in run order."""
    followed = {run: seq for run, seq in last.items() if run not in exclude}
    wanted = Q(run__session_id=session_id, run__created_at__gte=since) & ~Q(run_id__in=[*last, *exclude])
    for run, seq in followed.items():
        wanted |= Q(run_id=run, seq__gt=seq)
    rows = RunEvent.objects.filter(wanted).order_by("run__created_at", "run_id", "seq")
    return list(rows[:limit])


def session_snapshot(session_id: UUID) -> dict[str, int]:
    """The session's active runs with the sequence number of each one's last event."""
    runs = Run.objects.filter(session_id=session_id, status__in=ACTIVE_RUN_STATUSES)
    return {str(run): last_seq(run) for run in runs.values_list("pk", flat=True)}


def owned_schedules(owner: User) -> QuerySet[Schedule]:
    return Schedule.objects.filter(owner=owner).select_related(
        "agent", "last_firing", "periodic_task__interval", "periodic_task__crontab"
    )


def get_schedule(owner: User, schedule_id: UUID | str) -> Schedule:
    try:
        return owned_schedules(owner).get(pk=schedule_id)
    except (Schedule.DoesNotExist, ValueError):
        raise ScheduleNotFound(f"No schedule {schedule_id}.") from None


def lock_schedule(owner: User, schedule_id: UUID | str) -> Schedule:
    """The caller's schedule, locked for the rest of the transaction."""
    try:
        return Schedule.objects.select_for_update().get(pk=schedule_id, owner=owner)
    except (Schedule.DoesNotExist, ValueError):
        raise ScheduleNotFound(f"No schedule {schedule_id}.") from None


def schedule_firings(schedule: Schedule) -> QuerySet[ScheduleFiring]:
    return ScheduleFiring.objects.filter(schedule=schedule)


def next_fire_at(schedule: Schedule) -> datetime | None:
    """When beat will next fire the schedule, as beat reckons it (from its last firing)."""
    task = schedule.periodic_task
    if not schedule.enabled or task is None:
        return None
    remaining = task.schedule.remaining_estimate(task.last_run_at or task.date_changed)
    return timezone.now() + max(remaining, timedelta(0))


def queued_counts(api_key_id: int | None, limit: int) -> tuple[int, int]:
    """Runs waiting for a worker, and how many of them are this key's, among the first `limit`
    (so exact below `limit`). Plain SQL: it runs before every new run, and the ORM spends
    more time building this aggregate over a subquery than the database spends answering it."""
    table = Run._meta.db_table
    sql = (
        f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN api_key_id = %s THEN 1 ELSE 0 END), 0)"  # noqa: S608  # our table
        f" FROM (SELECT api_key_id FROM {table} WHERE status = %s LIMIT %s) AS queued"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [api_key_id, RunStatus.QUEUED.value, limit])
        total, mine = cursor.fetchone()
    return int(total), int(mine)


def unanswered_calls(run_id: UUID) -> list[tuple[str, str]]:
    """The tool calls (id, tool name) this run's messages made that have no result yet."""
    rows = Message.objects.filter(run_id=run_id, role__in=("assistant", "tool")).order_by("position")
    calls: dict[str, str] = {}
    for role, tool_calls, answered in rows.values_list("role", "tool_calls", "tool_call_id"):
        if role == "assistant":
            calls.update((call["id"], call["name"]) for call in tool_calls)
        else:
            calls.pop(answered, None)
    return list(calls.items())
