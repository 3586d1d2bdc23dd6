"""Retention: what is past its retention is deleted in batches; a session in use never is."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentplatform.purge import delete_batch
from agents import tasks
from agents.models import (
    Agent,
    IdempotencyKey,
    Message,
    Run,
    RunEvent,
    RunStatus,
    Schedule,
    ScheduleFiring,
    Session,
)
from agents.services.retention import expired_sessions
from approvals.models import ApprovalRequest, DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.conftest import Api
from tests.factories import create_api_key
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

DAYS = 30
LONG_AGO = timedelta(days=DAYS + 5)


@pytest.fixture
def retention(settings: Any) -> Any:
    """Set retention settings (the others stay 0: kept forever)."""

    def configure(**values: int) -> None:
        settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, **values}

    return configure


def _ago(delta: timedelta) -> Any:
    return timezone.now() - delta


def _session(owner: Any, *, idle: timedelta) -> Session:
    """A session of `calc`, created and last active `idle` ago."""
    session = Session.objects.create(owner=owner, agent=Agent.objects.get(name="calc"))
    Session.objects.filter(pk=session.pk).update(created_at=_ago(idle), updated_at=_ago(idle))
    return session


def _run(session: Session, *, status: str = RunStatus.COMPLETED, age: timedelta, events: int = 3) -> Run:
    """A run of the session created and (unless active) finished `age` ago, with its messages and events."""
    finished = status not in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)
    run = Run.objects.create(session=session, agent=session.agent, owner=session.owner, status=status, input="1+1")
    Run.objects.filter(pk=run.pk).update(created_at=_ago(age), finished_at=_ago(age) if finished else None)
    position = Message.objects.filter(session=session).count()
    Message.objects.bulk_create(
        [
            Message(session=session, run=run, position=position, role="user", content="1+1"),
            Message(session=session, run=run, position=position + 1, role="assistant", content="2"),
        ]
    )
    RunEvent.objects.bulk_create([RunEvent(run=run, seq=n, type="run.step") for n in range(1, events + 1)])
    RunEvent.objects.filter(run=run).update(created_at=_ago(age))
    return run


def _counts() -> dict[str, int]:
    return {
        "sessions": Session.objects.count(),
        "runs": Run.objects.count(),
        "messages": Message.objects.count(),
        "events": RunEvent.objects.count(),
        "approvals": ApprovalRequest.objects.count(),
    }


# Sessions


def test_an_idle_session_goes_with_everything_it_owns(api, llm, alice, retention):
    # Given a real conversation: a run paused for approval, approved, completed; with an idempotency key
    llm.enqueue(ToolCalls([Call("send_email", {"to": "bob@example.com", "subject": "hi"})]))
    status, paused = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    assert (status, paused["status"]) == (202, "awaiting_approval")
    reviewer = Api(create_api_key(alice, scopes=["approvals:decide"])[1])
    approval = ApprovalRequest.objects.get(run_id=paused["id"])
    llm.enqueue(Text("Sent."))
    assert reviewer.post(f"/api/v1/approvals/{approval.pk}/approve", {})[0] == 200
    wait_until(lambda: Run.objects.get(pk=paused["id"]).status == RunStatus.COMPLETED, timeout=30)
    run = Run.objects.get(pk=paused["id"])
    IdempotencyKey.objects.create(owner=alice, key="k-1", request_hash="0" * 64, run=run)
    owned = {
        "agents.Session": 1,
        "agents.Run": 1,
        "agents.Message": Message.objects.filter(session_id=run.session_id).count(),
        "agents.RunEvent": RunEvent.objects.filter(run=run).count(),
        "agents.IdempotencyKey": 1,
        "approvals.ApprovalRequest": 1,
    }
    assert owned["agents.Message"] >= 3  # the user's, the tool call, its result, the answer
    assert owned["agents.RunEvent"] >= 5
    # ... idle since long before the retention, next to a session used today
    Session.objects.filter(pk=run.session_id).update(updated_at=_ago(LONG_AGO))
    Run.objects.filter(pk=run.pk).update(created_at=_ago(LONG_AGO), finished_at=_ago(LONG_AGO))
    today = _run(_session(alice, idle=timedelta(hours=1)), age=timedelta(hours=1))
    retention(SESSION_RETENTION_DAYS=DAYS)

    # When the retention job runs
    summary = tasks.purge_expired()

    # Then the old session and everything it owned are gone; today's is whole
    assert summary == dict(sorted(owned.items()))
    assert not Session.objects.filter(pk=run.session_id).exists()
    assert not Message.objects.filter(session_id=run.session_id).exists()
    assert not RunEvent.objects.filter(run_id=run.pk).exists()
    assert not ApprovalRequest.objects.filter(pk=approval.pk).exists()
    assert not IdempotencyKey.objects.exists()
    assert _counts() == {"sessions": 1, "runs": 1, "messages": 2, "events": 3, "approvals": 0}
    assert Run.objects.get().pk == today.pk
    assert tasks.purge_expired() == {}  # nothing left to do


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL])
def test_a_session_with_an_active_run_is_kept_however_old(alice, retention, status):
    # Given a session idle for long, except for a run that is still active (started long ago)
    session = _session(alice, idle=LONG_AGO)
    _run(session, age=LONG_AGO * 2)
    _run(session, status=status, age=LONG_AGO)
    retention(SESSION_RETENTION_DAYS=DAYS, RUN_EVENT_RETENTION_DAYS=1)
    before = _counts()

    summary = tasks.purge_expired()

    # Then the session, its runs and messages stay; only the finished run's events went
    assert summary == {"agents.RunEvent": 3}
    assert _counts() == {**before, "events": before["events"] - 3}
    assert not RunEvent.objects.filter(run__session=session, run__status=RunStatus.COMPLETED).exists()


def test_a_session_with_recent_activity_is_kept(alice, retention):
    renamed = _session(alice, idle=timedelta(days=1))  # created long ago, renamed yesterday
    Session.objects.filter(pk=renamed.pk).update(created_at=_ago(LONG_AGO))
    _run(renamed, age=LONG_AGO)
    # a run that started long ago and finished yesterday (waited days for an approval)
    waited = _session(alice, idle=LONG_AGO)
    long_run = _run(waited, age=LONG_AGO)
    Run.objects.filter(pk=long_run.pk).update(finished_at=_ago(timedelta(days=1)))
    # a run that failed yesterday before writing anything to its session
    failed = _session(alice, idle=LONG_AGO)
    _run(failed, status=RunStatus.FAILED, age=timedelta(days=1))
    retention(SESSION_RETENTION_DAYS=DAYS)
    before = _counts()

    assert tasks.purge_expired() == {}
    assert _counts() == before


def test_the_session_an_enabled_schedule_runs_in_is_kept(alice, retention):
    # Given two idle sessions, each the fixed session of a schedule: one enabled, one disabled
    agent = Agent.objects.get(name="calc")
    schedules = {}
    for enabled in (True, False):
        session = _session(alice, idle=LONG_AGO)
        _run(session, age=LONG_AGO)
        schedules[enabled] = Schedule.objects.create(
            owner=alice, agent=agent, name=f"monthly {enabled}", input="1+1", interval_seconds=3600 * 24 * 60,
            session_strategy="fixed", session=session, enabled=enabled,
        )  # fmt: skip
    retention(SESSION_RETENTION_DAYS=DAYS)

    summary = tasks.purge_expired()

    # Then the enabled schedule keeps its conversation; the disabled one's goes (and it forgets it)
    assert summary["agents.Session"] == 1
    assert Schedule.objects.get(pk=schedules[True].pk).session_id is not None
    assert Schedule.objects.get(pk=schedules[False].pk).session_id is None


def test_a_session_that_became_busy_after_it_was_selected_is_kept(alice, retention):
    # Given an idle session, selected for deletion
    session = _session(alice, idle=LONG_AGO)
    _run(session, age=LONG_AGO)
    cutoff = _ago(timedelta(days=DAYS))
    assert list(expired_sessions(cutoff).values_list("pk", flat=True)) == [session.pk]

    # When a new run starts in it before its batch is deleted
    Run.objects.create(session=session, agent=session.agent, owner=alice, status=RunStatus.QUEUED, input="2+2")
    deleted = delete_batch(expired_sessions(cutoff), [session.pk])

    # Then the batch checks again under its lock, and deletes nothing
    assert deleted == {}
    assert Session.objects.filter(pk=session.pk).exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks: PostgreSQL (SQLite locks the database)")
def test_a_session_locked_by_a_new_run_is_passed_over_not_waited_for(alice, retention):
    # Given an idle session that a request holds (its row lock, as starting a run takes it)
    session = _session(alice, idle=LONG_AGO)
    _run(session, age=LONG_AGO)
    retention(SESSION_RETENTION_DAYS=DAYS)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            Session.objects.select_for_update().get(pk=session.pk)
            locked.set()
            release.wait(timeout=60)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=30)

        # When the retention job runs meanwhile
        summary = tasks.purge_expired()
    finally:
        release.set()
        holder.join()

    # Then it skipped the session (its events, of a finished run, may go) and did not wait
    assert "agents.Session" not in summary
    assert Session.objects.filter(pk=session.pk).exists()
    assert Message.objects.filter(session=session).count() == 2


# Run events


def test_old_events_of_finished_runs_go_and_the_runs_stay(alice, retention):
    # Given a session (used today) with an old finished run, a recent one and an old active one
    session = _session(alice, idle=timedelta(hours=1))
    old = _run(session, age=timedelta(days=10), events=4)
    recent = _run(session, age=timedelta(days=2), events=2)
    other = _session(alice, idle=timedelta(hours=1))
    waiting = _run(other, status=RunStatus.AWAITING_APPROVAL, age=timedelta(days=10), events=3)
    retention(RUN_EVENT_RETENTION_DAYS=7)
    before = _counts()

    summary = tasks.purge_expired()

    # Then only the old finished run's events are gone; every run and message stays
    assert summary == {"agents.RunEvent": 4}
    assert not RunEvent.objects.filter(run=old).exists()
    assert RunEvent.objects.filter(run=recent).count() == 2
    assert RunEvent.objects.filter(run=waiting).count() == 3
    assert _counts() == {**before, "events": before["events"] - 4}
    assert Message.objects.filter(run=old).count() == 2
    # and its stream, replayed, ends at once with nothing to replay
    assert _stream(alice, old).count("event: ") == 0
    assert _stream(alice, recent).count("event: run.step") == 2


def _stream(owner: Any, run: Run) -> str:
    """A run's SSE stream (GET .../events/), whole."""
    key = create_api_key(owner)[1]

    async def get() -> str:
        response = await AsyncClient().get(
            f"/api/v1/runs/{run.pk}/events/", headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        )
        return b"".join([chunk async for chunk in response.streaming_content]).decode()  # type: ignore[attr-defined]

    return asyncio.run(asyncio.wait_for(get(), timeout=60))


# Batches and dry runs


def test_a_batch_smaller_than_the_rows_deletes_them_all_in_several(alice, retention):
    # Given 5 idle sessions and 7 old runs' events, and batches of 2
    sessions = [_session(alice, idle=LONG_AGO) for _ in range(5)]
    for session in sessions:
        _run(session, age=LONG_AGO, events=1)
    kept = _session(alice, idle=timedelta(hours=1))
    for _ in range(2):
        _run(kept, age=timedelta(days=10), events=1)
    retention(SESSION_RETENTION_DAYS=DAYS, RUN_EVENT_RETENTION_DAYS=7, RETENTION_BATCH_SIZE=2)

    with CaptureQueriesContext(connection) as queries:
        summary = tasks.purge_expired()

    # Then all go, two at most per statement: events by their ids in four batches (2, 2, 2, 1),
    # then sessions in three (2, 2, 1)
    assert summary == {
        "agents.Message": 10,
        "agents.Run": 5,
        "agents.RunEvent": 7,
        "agents.Session": 5,
    }
    assert _deletes_by_id(queries, Session) == 3
    assert _deletes_by_id(queries, RunEvent) == 4
    assert _counts() == {"sessions": 1, "runs": 2, "messages": 4, "events": 0, "approvals": 0}


def _deletes_by_id(queries: CaptureQueriesContext, model: Any) -> int:
    """DELETE statements of the model's rows by primary key (not those that cascade from another)."""
    table = connection.ops.quote_name(model._meta.db_table)
    start = f"DELETE FROM {table} WHERE {table}.{connection.ops.quote_name('id')} IN"
    return sum(1 for query in queries.captured_queries if query["sql"].startswith(start))


def test_a_dry_run_counts_and_changes_nothing(alice, retention):
    # Given idle sessions and old events
    for _ in range(3):
        _run(_session(alice, idle=LONG_AGO), age=LONG_AGO)
    _run(_session(alice, idle=timedelta(hours=1)), age=timedelta(days=10))
    retention(SESSION_RETENTION_DAYS=DAYS, RUN_EVENT_RETENTION_DAYS=7, RETENTION_BATCH_SIZE=2)
    before = _counts()

    # When the command runs with --dry-run
    out = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)

    # Then it prints what the real run then deletes, and nothing changed meanwhile
    assert _counts() == before
    real = io.StringIO()
    call_command("purge_expired", stdout=real)
    assert out.getvalue().replace("Would delete", "Deleted") == real.getvalue()
    assert "Deleted 3 agents.Session\n" in real.getvalue()
    assert "Deleted 12 agents.RunEvent\n" in real.getvalue()  # the idle sessions' 9, the recent session's 3
    assert _counts() == {"sessions": 1, "runs": 1, "messages": 2, "events": 0, "approvals": 0}


def test_nothing_is_deleted_by_default(alice):
    _run(_session(alice, idle=timedelta(days=3650)), age=timedelta(days=3650))
    before = _counts()

    out = io.StringIO()
    call_command("purge_expired", stdout=out)

    assert tasks.purge_expired() == {}
    assert _counts() == before
    assert "Deleted nothing" in out.getvalue()


# Webhook deliveries and schedule firings


def test_settled_webhook_deliveries_go_with_their_attempts(alice, retention):
    endpoint = WebhookEndpoint.objects.create(owner=alice, url="https://example.com/hook", secret_encrypted="x")

    def delivery(status: str, age: timedelta, **fields: Any) -> WebhookDelivery:
        row = WebhookDelivery.objects.create(
            endpoint=endpoint, event_id=endpoint.pk, event_type="run.completed", payload="{}", status=status, **fields
        )
        WebhookDelivery.objects.filter(pk=row.pk).update(created_at=_ago(age))
        WebhookAttempt.objects.create(delivery=row, number=1, started_at=_ago(age), status_code=200)
        return row

    delivered = delivery(DeliveryStatus.DELIVERED, LONG_AGO)
    failed = delivery(DeliveryStatus.FAILED, LONG_AGO)
    pending = delivery(DeliveryStatus.PENDING, LONG_AGO)
    resending = delivery(DeliveryStatus.FAILED, LONG_AGO, claimed_until=timezone.now() + timedelta(minutes=1))
    recent = delivery(DeliveryStatus.DELIVERED, timedelta(days=1))
    retention(WEBHOOK_DELIVERY_RETENTION_DAYS=DAYS)

    summary = tasks.purge_expired()

    assert summary == {"approvals.WebhookAttempt": 2, "approvals.WebhookDelivery": 2}
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {pending.pk, resending.pk, recent.pk}
    assert not ({delivered.pk, failed.pk} & set(WebhookAttempt.objects.values_list("delivery_id", flat=True)))


def test_old_schedule_firings_go_except_the_last(alice, retention):
    schedule = Schedule.objects.create(
        owner=alice, agent=Agent.objects.get(name="calc"), name="hourly", input="1+1", interval_seconds=3600
    )
    firings = [ScheduleFiring.objects.create(schedule=schedule, outcome="skipped") for _ in range(4)]
    ScheduleFiring.objects.filter(pk__in=[f.pk for f in firings[:3]]).update(created_at=_ago(LONG_AGO))
    ScheduleFiring.objects.filter(pk=firings[3].pk).update(created_at=_ago(timedelta(days=1)))
    Schedule.objects.filter(pk=schedule.pk).update(last_firing=firings[2])  # the last one beat recorded
    retention(SCHEDULE_FIRING_RETENTION_DAYS=DAYS, RETENTION_BATCH_SIZE=1)

    summary = tasks.purge_expired()

    assert summary == {"agents.ScheduleFiring": 2}
    assert set(ScheduleFiring.objects.values_list("pk", flat=True)) == {firings[2].pk, firings[3].pk}
    assert Schedule.objects.get(pk=schedule.pk).last_firing_id == firings[2].pk
