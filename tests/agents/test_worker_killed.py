"""A worker process killed with SIGKILL mid-run: its run is failed with a clear error, not left running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from agentplatform.celery import TaskName
from agents import tasks
from agents.models import Agent, Run, RunEvent, Session
from tests.conftest import start_worker_process
from tests.fakes.llm_server import Call, ToolCalls
from tests.infra import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker_process(llm, tmp_path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A separate worker process, on a broker of its own."""
    broker = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    process = start_worker_process(tmp_path / "worker.log", broker, {"AGENTPLATFORM_RUN_LEASE_SECONDS": "1"}, threads=2)
    try:
        yield process, broker
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_run_on_a_killed_worker_is_failed_by_the_reaper(alice, llm, worker_process, settings):
    process, broker = worker_process
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "RUN_LEASE_SECONDS": 1.0}
    session = Session.objects.create(owner=alice, agent=Agent.objects.get(name="oai"))
    run = Run.objects.create(session=session, agent=session.agent, owner=alice, status="queued", input="wait")
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))  # blocks in the worker: its gate never opens
    sender = Celery(broker=broker)
    sender.send_task(TaskName.EXECUTE_RUN, args=[str(run.pk)], queue="runs")
    wait_until(lambda: RunEvent.objects.filter(run=run, type="tool.call.started").exists(), timeout=30)

    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(1.5)  # past the lease, which no one renews now
    summary = tasks.reap_runs()

    run.refresh_from_db()
    assert summary["reaped"] == 1
    assert run.status == "failed"
    assert run.error is not None
    assert run.error["code"] == "worker_lost"
    types = list(RunEvent.objects.filter(run=run).values_list("type", flat=True))
    # the call it was making gets a result saying so, which keeps the session usable
    assert types == ["run.started", "tool.call.started", "tool.call.completed", "run.failed"]
    result = RunEvent.objects.get(run=run, type="tool.call.completed").data
    assert (result["name"], result["is_error"]) == ("wait_at_gate", True)
    assert result["result"].startswith("Not executed: The worker executing this run stopped")
    sender.close()
