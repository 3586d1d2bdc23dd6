"""A real Celery beat (django-celery-beat's DatabaseScheduler) fires a schedule made through
the API while it runs; the worker completes the run. Beat runs as its own process (the
distributed topology) or as a thread of a worker (`--beat-thread`, the embedded one)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from agentplatform.beat import DatabaseScheduler
from agentplatform.celery import app
from agents.models import Run, ScheduleFiring
from tests.infra import database_url, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


BEATS = {
    "process": ["beat"],
    # a worker on a queue of its own: the suite's worker runs the tasks, this one only schedules
    "worker-thread": ["worker", "--beat-thread", "--pool", "threads", "--queues", "beat-test", "--without-gossip"],
}


@pytest.fixture(params=list(BEATS))
def beat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """Beat on the test database and broker, with the scheduler the settings name."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "beat.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "agentplatform.celery:app", *BEATS[request.param], "-l", "INFO"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # Beat has read the database once it has written the settings' entries there.
        wait_until(lambda: PeriodicTask.objects.filter(name="reap-runs").exists(), timeout=60)
        yield log
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_beat_fires_a_schedule_created_while_it_runs(api, beat):
    # Given beat already running, when a client schedules a job every 10 seconds
    status, schedule = api.post(
        "/api/v1/schedules/", {"name": "sums", "agent": "calc", "input": "2+3", "interval_seconds": 10}
    )
    assert status == 201, schedule

    # Then beat fires it and the worker completes its run, with no restart
    runs = Run.objects.filter(schedule_id=schedule["id"], status="completed")
    wait_until(runs.exists, timeout=120)
    run = runs.first()
    assert run is not None
    assert run.output == "5 (and tool_denied)"
    firing = ScheduleFiring.objects.filter(schedule_id=schedule["id"]).order_by("created_at").first()
    assert firing is not None
    assert (firing.outcome, firing.run_id) == ("started", run.pk)
    assert firing.task_id  # sent by beat: its task id makes a redelivery harmless
    assert f"Sending due task agent-schedule:{schedule['id']} (agents.fire_schedule)" in beat.read_text()
    # and the settings' own entry (the reaper) lives in the same database schedule
    reaper = PeriodicTask.objects.select_related("interval").get(name="reap-runs")
    assert (reaper.task, reaper.queue, reaper.interval.every) == ("agents.reap_runs", "maintenance", 30)
    retention = PeriodicTask.objects.select_related("interval").get(name="purge-expired")
    assert (retention.task, retention.queue, retention.interval.every) == ("agents.purge_expired", "maintenance", 3600)
    # Finally, disabling it through the API stops beat's row at once
    status, _ = api.patch(f"/api/v1/schedules/{schedule['id']}/", {"enabled": False})
    assert status == 200
    assert not PeriodicTask.objects.get(name=f"agent-schedule:{schedule['id']}").enabled


def test_beat_sees_a_schedule_saved_before_its_first_check():
    # Given beat's scheduler right after its first read of the database (as at its start,
    # before it has compared change stamps even once)
    scheduler = DatabaseScheduler(app=app, lazy=True)
    assert scheduler.schedule == {}

    # When a schedule is saved then
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="early", task="agents.fire_schedule", interval=every)

    # Then its next look sees the change and loads it (django-celery-beat's own took the
    # first comparison as a baseline, and ignored the schedule until its five-minute reload)
    assert "early" in scheduler.schedule
