"""A worker process carries many runs at once: waiting on a model holds no thread, and a
worker stopping with SIGTERM lets the runs it carries finish."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from celery import Celery

from agentplatform.celery import TaskName
from agents.models import Agent, Run, RunStatus, Session
from tests.conftest import start_worker_process
from tests.infra import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _worker(tmp_path: Path, broker: str, **settings: str) -> subprocess.Popen[bytes]:
    return start_worker_process(tmp_path / "worker.log", broker, settings)


def _queued_runs(owner, count: int) -> list[Run]:
    agent = Agent.objects.get(name="oai")
    sessions = Session.objects.bulk_create([Session(owner=owner, agent=agent) for _ in range(count)])
    return Run.objects.bulk_create(
        [Run(session=s, agent=agent, owner=owner, status=RunStatus.QUEUED, input="hello") for s in sessions]
    )


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def _send(broker: str, runs: list[Run]) -> None:
    with Celery(broker=broker) as sender:
        for run in runs:
            sender.send_task(TaskName.EXECUTE_RUN, args=[str(run.pk)], queue="runs")


@pytest.fixture
def broker() -> str:
    return os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/2"


def test_one_worker_carries_300_runs_waiting_on_their_model_with_a_bounded_number_of_threads(
    alice, slow_model, broker, tmp_path, started
):
    # Given a worker process allowed 300 runs at once, and 300 queued runs whose model takes seconds
    worker = _worker(tmp_path, broker, AGENTPLATFORM_RUN_CONCURRENCY="300")
    started.append(worker)
    idle_threads = _threads(worker.pid)
    runs = _queued_runs(alice, 300)

    # When they are all handed to it
    _send(broker, runs)
    most_running, most_threads = 0, 0
    deadline = time.monotonic() + 120
    while Run.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        assert time.monotonic() < deadline, "the runs did not finish within two minutes"
        most_running = max(most_running, Run.objects.filter(status=RunStatus.RUNNING).count())
        most_threads = max(most_threads, _threads(worker.pid))
        time.sleep(0.1)

    # Then every run completed; most of them waited on the model at the same time, and the
    # worker did so with a few dozen threads (its pools), not one per run
    assert Run.objects.filter(status=RunStatus.COMPLETED).count() == 300
    assert most_running >= 200, f"at most {most_running} runs were in flight at once"
    assert most_threads - idle_threads <= 50, f"{idle_threads} threads idle, {most_threads} with 300 runs"
    worker.terminate()
    assert worker.wait(timeout=60) == 0


def test_a_worker_stopped_with_sigterm_lets_the_runs_it_carries_finish(alice, slow_model, broker, tmp_path, started):
    # Given a worker carrying five runs, each waiting on its model
    worker = _worker(tmp_path, broker)
    started.append(worker)
    runs = _queued_runs(alice, 5)
    _send(broker, runs)
    wait_until(lambda: Run.objects.filter(status=RunStatus.RUNNING).count() == 5, timeout=30)

    # When it is told to stop
    worker.send_signal(signal.SIGTERM)

    # Then it exits cleanly once they have finished: none is lost or left running
    assert worker.wait(timeout=60) == 0
    statuses = set(Run.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True))
    assert statuses == {RunStatus.COMPLETED}


def test_a_worker_with_every_slot_taken_leaves_the_other_runs_on_the_broker_until_one_frees(
    alice, slow_model, broker, tmp_path, started
):
    # Given a worker that carries two runs at once, and six queued runs
    worker = _worker(tmp_path, broker, AGENTPLATFORM_RUN_CONCURRENCY="2", AGENTPLATFORM_RUN_SLOT_WAIT="0.2")
    started.append(worker)
    runs = _queued_runs(alice, 6)

    # When they are all handed to it
    _send(broker, runs)
    most_running = 0
    deadline = time.monotonic() + 90
    while Run.objects.exclude(status=RunStatus.COMPLETED).exists():
        assert time.monotonic() < deadline, "the runs did not finish"
        most_running = max(most_running, Run.objects.filter(status=RunStatus.RUNNING).count())
        time.sleep(0.05)

    # Then it never carried more than two, and every run completed once its turn came
    assert most_running == 2
    assert "back to the broker" in (tmp_path / "worker.log").read_text()  # the tasks it could not take went back
