"""Crons, as the platform's schedules: created with the SDK, fired by beat (here: its task,
called as beat would), found, changed, deleted, kept to their owner."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from uuid import UUID

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from agents import tasks
from agents.langgraph.translate import assistant_id
from agents.models import Run, Schedule
from tests.agents.langgraph import says
from tests.fakes.llm_server import Text

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_thread_cron_is_a_schedule_that_fires_into_the_thread(daphne, connect, api, llm):
    llm.enqueue(Text("Daily report: all good."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    cron = client.crons.create_for_thread(
        tid,
        "oai",
        schedule="0 9 * * 1-5",
        input=says("Write the daily report"),
        metadata={"team": "ops"},
        timezone="Europe/Paris",
    )

    schedule = Schedule.objects.select_related("agent", "periodic_task__crontab").get(pk=cron["cron_id"])
    assert (schedule.agent.name, schedule.input, schedule.session_id) == ("oai", "Write the daily report", UUID(tid))
    assert (schedule.cron, schedule.timezone) == ("0 9 * * 1-5", "Europe/Paris")
    assert schedule.periodic_task is not None
    assert str(schedule.periodic_task.crontab.timezone) == "Europe/Paris"  # beat fires it
    assert (cron["thread_id"], cron["assistant_id"], cron["enabled"]) == (tid, assistant_id("oai"), True)
    assert cron["payload"]["input"]["messages"][0]["content"] == "Write the daily report"
    upcoming = datetime.fromisoformat(cron["next_run_date"]).astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    assert (upcoming.hour, upcoming.minute, upcoming.weekday() < 5) == (9, 0, True)
    assert upcoming > timezone.now()

    # When beat fires it, Then the run is on the thread, with the cron's metadata
    summary = tasks.fire_schedule(cron["cron_id"])
    values = client.runs.join(tid, summary["run_id"])
    assert summary["outcome"] == "started"
    assert values["messages"][-1]["content"] == "Daily report: all good."
    assert [run["run_id"] for run in client.runs.list(tid)] == [summary["run_id"]]
    assert client.runs.get(tid, summary["run_id"])["metadata"] == {"team": "ops"}


def test_a_stateless_cron_fires_into_a_new_thread_each_time(daphne, connect, api, llm):
    llm.enqueue(Text("Tick one."), Text("Tick two."))
    client = connect(api.key)

    cron = client.crons.create("oai", schedule="*/5 * * * *", input=says("Tick"))

    threads = []
    for answer in ("Tick one.", "Tick two."):
        run_id = tasks.fire_schedule(cron["cron_id"])["run_id"]
        tid = str(Run.objects.get(pk=run_id).session_id)
        assert client.runs.join(tid, run_id)["messages"][-1]["content"] == answer
        threads.append(tid)
    assert cron["thread_id"] is None
    assert len(set(threads)) == 2
    assert {t["thread_id"] for t in client.threads.search()} == set(threads)  # kept, not deleted


def test_crons_are_found_changed_deleted_and_kept_to_their_owner(daphne, connect, api, make_api):
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    hourly = client.crons.create_for_thread(tid, "oai", schedule="0 * * * *", input=says("Hourly"))
    nightly = client.crons.create("calc", schedule="30 2 * * *", input=says("1+1"), metadata={"kind": "nightly"})

    assert {c["cron_id"] for c in client.crons.search()} == {hourly["cron_id"], nightly["cron_id"]}
    assert [c["cron_id"] for c in client.crons.search(assistant_id="calc")] == [nightly["cron_id"]]
    assert [c["cron_id"] for c in client.crons.search(metadata={"kind": "nightly"})] == [nightly["cron_id"]]
    only = client.crons.search(thread_id=tid, select=["cron_id", "schedule"])
    assert only == [{"cron_id": hourly["cron_id"], "schedule": "0 * * * *"}]
    assert client.crons.count() == 2
    changed = client.crons.update(nightly["cron_id"], schedule="0 3 * * *", enabled=False)
    assert (changed["schedule"], changed["enabled"], changed["next_run_date"]) == ("0 3 * * *", False, None)
    assert not PeriodicTask.objects.get(name=f"agent-schedule:{nightly['cron_id']}").enabled

    bob = connect(make_api("bob").key)
    assert bob.crons.search() == []
    assert bob.crons.count() == 0
    for call in (
        lambda: bob.crons.delete(hourly["cron_id"]),
        lambda: bob.crons.update(hourly["cron_id"], enabled=False),
        lambda: bob.crons.create_for_thread(tid, "oai", schedule="0 * * * *", input=says("Mine now")),
    ):
        with pytest.raises(NotFoundError):
            call()

    client.crons.delete(hourly["cron_id"])
    assert [c["cron_id"] for c in client.crons.search()] == [nightly["cron_id"]]
    assert not PeriodicTask.objects.filter(name=f"agent-schedule:{hourly['cron_id']}").exists()
    assert Schedule.objects.get().enabled is False


def test_a_cron_that_cannot_be_kept_is_refused_before_anything_is_written(daphne, connect, api):
    client = connect(api.key)

    for bad in (
        {"schedule": "every morning"},
        {"timezone": "Mars/Olympus_Mons"},
        {"multitask_strategy": "interrupt"},  # a firing never interrupts a run
        {"input": {"text": "no messages"}},
        {"interrupt_before": ["tools"]},
    ):
        with pytest.raises(UnprocessableEntityError):
            client.crons.create("oai", **{"schedule": "0 9 * * *", "input": says("hi"), **bad})
    with pytest.raises(NotFoundError):
        client.crons.create("no-such-agent", schedule="0 9 * * *", input=says("hi"))
    assert not Schedule.objects.exists()
    assert not PeriodicTask.objects.filter(name__startswith="agent-schedule:").exists()
