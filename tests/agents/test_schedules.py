"""Schedules through the API: kept in step with beat's rows, validated, and fired into runs."""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from agentplatform.celery import TaskName
from agents import tasks
from agents.models import Agent, ApiKey, Run, Schedule, ScheduleFiring, Session
from tests import sample_agents
from tests.factories import create_user
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_MINUTE = {"name": "sums", "agent": "calc", "input": "1+1", "interval_seconds": 60}
WEEKDAY_MORNINGS = {
    "name": "mornings",
    "agent": "calc",
    "input": "2+2",
    "cron": "0 9 * * 1-5",
    "timezone": "Europe/Paris",
}


def _create(api, **overrides) -> dict:
    status, body = api.post("/api/v1/schedules/", {**EVERY_MINUTE, **overrides})
    assert status == 201, body
    return body


def _task(schedule_id: str) -> PeriodicTask:
    return Schedule.objects.select_related("periodic_task").get(pk=schedule_id).periodic_task


def _rows() -> tuple[int, int, int, int]:
    return Schedule.objects.count(), PeriodicTask.objects.count(), Session.objects.count(), Run.objects.count()


def _finished(run_id: str) -> bool:
    return Run.objects.get(pk=run_id).status not in ("queued", "running")


def _wait_finished(run_id: str) -> Run:
    wait_until(lambda: _finished(run_id), timeout=30)
    return Run.objects.get(pk=run_id)


# CRUD, and beat's row in step


def test_a_cron_schedule_gets_a_crontab_row_in_its_time_zone(api):
    schedule = _create(api, **{**WEEKDAY_MORNINGS, "interval_seconds": None})

    assert schedule["cron"] == "0 9 * * 1-5"
    assert schedule["timezone"] == "Europe/Paris"
    assert (schedule["session_strategy"], schedule["overlap"], schedule["enabled"]) == ("new", "skip", True)
    assert schedule["last_firing"] is None
    task = _task(schedule["id"])
    assert task.task == TaskName.FIRE_SCHEDULE
    assert json.loads(task.args) == [schedule["id"]]
    assert task.enabled
    assert task.interval is None
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "0",
        "9",
        "*",
        "*",
        "1-5",
    )
    assert str(cron.timezone) == "Europe/Paris"
    next_fire = datetime.fromisoformat(schedule["next_fire_at"]).astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    assert (next_fire.hour, next_fire.minute, next_fire.weekday() < 5) == (9, 0, True)


def test_an_interval_schedule_gets_an_interval_row(api):
    schedule = _create(api)

    task = _task(schedule["id"])
    assert (task.interval.every, task.interval.period) == (60, "seconds")
    assert task.crontab is None
    assert task.expire_seconds == 60  # a firing later than one interval is dropped
    assert schedule["interval_seconds"] == 60
    assert schedule["cron"] == ""


def test_list_and_get(api):
    first = _create(api, name="first")
    second = _create(api, name="second")

    status, page = api.get("/api/v1/schedules/")
    got, detail = api.get(f"/api/v1/schedules/{first['id']}/")

    assert status == 200
    assert [s["name"] for s in page["results"]] == ["second", "first"]
    assert (got, detail["id"], detail["agent"]) == (200, first["id"], "calc")
    assert second["id"] != first["id"]


def test_another_users_schedule_is_not_found(api, make_api):
    schedule = _create(api)
    bob = make_api("bob")
    path = f"/api/v1/schedules/{schedule['id']}/"

    answers = [
        bob.get(path),
        bob.patch(path, {"enabled": False}),
        bob.delete(path),
        bob.get(path + "runs/"),
        bob.get(path + "firings/"),
    ]

    assert [(status, body["error"]["code"]) for status, body in answers] == [(404, "schedule_not_found")] * 5
    assert bob.get("/api/v1/schedules/")[1]["results"] == []
    assert _task(schedule["id"]).enabled


def test_patch_changes_beats_row_and_tells_beat(api):
    schedule = _create(api)
    long_ago = timezone.now() - timedelta(days=1)
    PeriodicTasks.objects.update(last_update=long_ago)  # beat reloads when this moves

    status, body = api.patch(
        f"/api/v1/schedules/{schedule['id']}/",
        {"interval_seconds": None, "cron": "*/5 * * * *", "timezone": "America/New_York", "enabled": False},
    )

    assert status == 200, body
    assert (body["cron"], body["enabled"], body["next_fire_at"]) == ("*/5 * * * *", False, None)
    task = _task(schedule["id"])
    assert task.interval is None
    assert (task.crontab.minute, str(task.crontab.timezone)) == ("*/5", "America/New_York")
    assert not task.enabled
    assert PeriodicTasks.last_change() > long_ago
    status, body = api.patch(f"/api/v1/schedules/{schedule['id']}/", {"enabled": True, "name": "renamed"})
    assert (status, body["name"]) == (200, "renamed")
    assert _task(schedule["id"]).enabled


def test_delete_removes_beats_row_and_keeps_the_runs(api):
    schedule = _create(api)
    summary = tasks.fire_schedule(schedule["id"])
    _wait_finished(summary["run_id"])

    status, _ = api.delete(f"/api/v1/schedules/{schedule['id']}/")

    assert status == 204
    assert not Schedule.objects.exists()
    assert not PeriodicTask.objects.exists()
    assert Run.objects.get(pk=summary["run_id"]).schedule_id is None


# Bad input: 400 naming the field, nothing written


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"interval_seconds": None, "cron": "61 * * * *"}, "cron"),
        ({"interval_seconds": None, "cron": "* * * *"}, "cron"),
        ({"interval_seconds": None, "cron": "every day at nine"}, "cron"),
        ({"interval_seconds": None, "cron": "0 9 * * mon-funday"}, "cron"),
        ({"interval_seconds": None, "cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"interval_seconds": None, "cron": "0 9 * * *", "timezone": "../../etc/passwd"}, "timezone"),
        ({"cron": "0 9 * * *"}, "interval_seconds"),
        ({"interval_seconds": None}, "cron"),
        ({"interval_seconds": 5}, "interval_seconds"),
        ({"interval_seconds": 10**12}, "interval_seconds"),
        ({"ends_at": "2001-01-01T00:00:00Z"}, "ends_at"),
    ],
    ids=[
        "cron-out-of-range",
        "cron-four-fields",
        "cron-words",
        "cron-bad-weekday",
        "unknown-timezone",
        "timezone-path",
        "cron-and-interval",
        "neither",
        "interval-too-short",
        "interval-too-long",
        "ends-in-the-past",
    ],
)
def test_a_bad_schedule_is_a_400_naming_the_field(api, overrides, field):
    before = _rows()

    status, body = api.post("/api/v1/schedules/", {**EVERY_MINUTE, **overrides})

    assert status == 400, body
    assert body["error"]["code"] == "invalid_schedule"
    assert body["error"]["details"] == {"field": field}
    assert body["error"]["message"].startswith(f"{field}: ")
    assert _rows() == before


@pytest.mark.parametrize("case", ["another-users", "another-agents", "with-strategy-new"])
def test_a_session_that_cannot_be_used_is_a_400(api, alice, case):
    owner = create_user("carol") if case == "another-users" else alice
    session = Session.objects.create(
        owner=owner, agent=Agent.objects.get(name="demo" if case == "another-agents" else "calc")
    )
    strategy = "new" if case == "with-strategy-new" else "fixed"
    before = _rows()

    status, body = api.post(
        "/api/v1/schedules/", {**EVERY_MINUTE, "session_strategy": strategy, "session_id": str(session.pk)}
    )

    assert (status, body["error"]["code"], body["error"]["details"]) == (
        400,
        "invalid_schedule",
        {"field": "session_id"},
    )
    assert _rows() == before


def test_shape_errors_are_invalid_request_and_unknown_agents_404(api):
    before = _rows()

    typo = api.post("/api/v1/schedules/", {**EVERY_MINUTE, "intervall": 60})
    no_name = api.post("/api/v1/schedules/", {k: v for k, v in EVERY_MINUTE.items() if k != "name"})
    unknown = api.post("/api/v1/schedules/", {**EVERY_MINUTE, "agent": "nobody"})

    assert (typo[0], typo[1]["error"]["code"], typo[1]["error"]["details"]) == (
        400,
        "invalid_request",
        {"intervall": ["Unknown field."]},
    )
    assert (no_name[0], no_name[1]["error"]["details"]) == (400, {"name": ["This field is required."]})
    assert (unknown[0], unknown[1]["error"]["code"]) == (404, "agent_not_found")
    assert _rows() == before


def test_a_bad_patch_changes_nothing(api):
    schedule = _create(api)
    task = _task(schedule["id"])

    status, body = api.patch(f"/api/v1/schedules/{schedule['id']}/", {"interval_seconds": None, "cron": "0 0 31 2 x"})

    assert (status, body["error"]["details"]) == (400, {"field": "cron"})
    assert Schedule.objects.get(pk=schedule["id"]).interval_seconds == 60
    after = _task(schedule["id"])
    assert (after.interval_id, after.crontab_id, after.date_changed) == (task.interval_id, None, task.date_changed)


# Firing


def test_a_firing_starts_a_run_that_the_worker_completes(api):
    schedule = _create(api, metadata={"source": "nightly"})

    summary = tasks.fire_schedule(schedule["id"])

    assert summary["outcome"] == "started"
    _wait_finished(summary["run_id"])
    status, runs = api.get(f"/api/v1/schedules/{schedule['id']}/runs/")
    assert status == 200
    [run] = runs["results"]
    assert (run["id"], run["status"], run["output"]) == (summary["run_id"], "completed", "2 (and tool_denied)")
    assert (run["schedule_id"], run["input"], run["metadata"]) == (schedule["id"], "1+1", {"source": "nightly"})
    detail = api.get(f"/api/v1/schedules/{schedule['id']}/")[1]
    assert detail["last_firing"]["outcome"] == "started"
    assert detail["last_firing"]["run_id"] == summary["run_id"]


def test_new_sessions_each_time_or_one_fixed_session(api):
    new = _create(api, name="new")
    fixed = _create(api, name="fixed", session_strategy="fixed")

    runs = []
    for schedule in (new, new, fixed, fixed):
        runs.append(_wait_finished(tasks.fire_schedule(schedule["id"])["run_id"]))

    assert runs[0].session_id != runs[1].session_id
    assert runs[2].session_id == runs[3].session_id
    assert Schedule.objects.get(pk=fixed["id"]).session_id == runs[2].session_id  # the first run's session stays
    assert Run.objects.filter(session_id=runs[3].session_id).count() == 2


def test_a_firing_while_the_previous_run_is_active_is_skipped(api, llm):
    # Given a schedule whose first run waits on a tool
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("first"), Text("second"))
    schedule = _create(api, agent="oai", input="wait")
    first = tasks.fire_schedule(schedule["id"])
    try:
        wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS, timeout=30)

        # When beat fires it again
        skipped = tasks.fire_schedule(schedule["id"])
    finally:
        sample_agents.GATE.set()

    # Then no run is created and the skip names the active run
    assert skipped == {"schedule_id": schedule["id"], "outcome": "skipped", "run_id": first["run_id"]}
    assert Run.objects.filter(schedule_id=schedule["id"]).count() == 1
    _, firings = api.get(f"/api/v1/schedules/{schedule['id']}/firings/")
    latest = firings["results"][0]
    assert (latest["outcome"], latest["run_id"], latest["error"]["code"]) == (
        "skipped",
        first["run_id"],
        "run_still_active",
    )
    assert first["run_id"] in latest["error"]["message"]
    # and once the run is done, the next firing starts one
    _wait_finished(first["run_id"])
    third = tasks.fire_schedule(schedule["id"])
    assert third["outcome"] == "started"
    _wait_finished(third["run_id"])
    assert Run.objects.get(pk=third["run_id"]).output == "second"


def test_a_run_left_running_skips_with_skip_and_not_with_allow(api, alice):
    skip = Schedule.objects.get(pk=_create(api, name="skip")["id"])
    allow = Schedule.objects.get(pk=_create(api, name="allow", overlap="allow")["id"])
    for schedule in (skip, allow):
        session = Session.objects.create(owner=alice, agent=schedule.agent)
        Run.objects.create(
            session=session, agent=schedule.agent, owner=alice, status="running", input="x", schedule=schedule
        )

    skipped = tasks.fire_schedule(str(skip.pk))
    started = tasks.fire_schedule(str(allow.pk))

    assert skipped["outcome"] == "skipped"
    assert Run.objects.filter(schedule=skip).count() == 1
    assert started["outcome"] == "started"
    _wait_finished(started["run_id"])
    assert Run.objects.get(pk=started["run_id"]).status == "completed"


def test_a_firing_after_the_end_date_disables_the_schedule(api):
    schedule = _create(api, ends_at=(timezone.now() + timedelta(hours=1)).isoformat())
    Schedule.objects.filter(pk=schedule["id"]).update(ends_at=timezone.now() - timedelta(seconds=1))

    summary = tasks.fire_schedule(schedule["id"])

    assert summary["outcome"] == "ended"
    assert not Schedule.objects.get(pk=schedule["id"]).enabled
    assert not _task(schedule["id"]).enabled
    assert not Run.objects.exists()
    assert tasks.fire_schedule(schedule["id"])["outcome"] is None  # disabled: a late firing does nothing


@pytest.mark.parametrize("cause", ["agent_disabled", "api_key_revoked", "api_key_expired", "user_inactive"])
def test_a_firing_that_cannot_run_is_recorded_and_the_schedule_stays(api, alice, cause):
    schedule = _create(api)
    if cause == "agent_disabled":
        Agent.objects.filter(name="calc").update(enabled=False)
    elif cause == "api_key_revoked":
        ApiKey.objects.update(revoked_at=timezone.now())
    elif cause == "api_key_expired":
        ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        alice.is_active = False
        alice.save()

    summary = tasks.fire_schedule(schedule["id"])

    assert (summary["outcome"], summary["run_id"]) == ("failed", None)
    firing = ScheduleFiring.objects.get(schedule_id=schedule["id"])
    assert firing.error is not None
    assert firing.error["code"] == cause
    assert not Run.objects.exists()
    assert Schedule.objects.get(pk=schedule["id"]).enabled


def test_a_redelivered_firing_fires_once(api):
    schedule = _create(api)

    first = tasks.fire_schedule.apply(args=[schedule["id"]], task_id="beat-firing-1").get()
    again = tasks.fire_schedule.apply(args=[schedule["id"]], task_id="beat-firing-1").get()

    assert first["outcome"] == "started"
    assert again["outcome"] == "duplicate"
    assert Run.objects.count() == 1
    assert ScheduleFiring.objects.count() == 1
    _wait_finished(first["run_id"])
