"""The embedded topology, as `manage.py up` runs it: web processes and a worker send their
spans through Redis to the span sink, which owns the chDB store; the trace API, served by
a web process, reads it back through the same route."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.embedded import ROOT, api_key, embedded_env, get, launch, post, signal_stop, wait_for_banner
from tests.infra import free_port, wait_until

pytestmark = pytest.mark.slow

TASK = "celery.task agents.execute_run"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh embedded deployment (tracing on, its default), its spans exported and inserted every 0.2 s."""
    return embedded_env(
        tmp_path / "data",
        AGENTPLATFORM_WEB_WORKERS="2",
        AGENTPLATFORM_TRACE_FLUSH_INTERVAL="0.2",
        AGENTPLATFORM_TRACE_SINK_INTERVAL="0.2",
    )


def _run_trace(base: str, key: str, run_id: str) -> dict:
    """The run's trace, once the API lists it with all its spans."""
    deadline = time.monotonic() + 60
    while True:  # the sink may still be starting, and the spans are flushed every 0.2 s
        try:
            page = get(f"{base}/traces/?run={run_id}", key)
        except OSError:  # 503 until the sink serves
            page = {"results": []}
        if page["results"] and page["results"][0]["span_count"] >= 7:
            return get(f"{base}/traces/{page['results'][0]['trace_id']}/", key)
        assert time.monotonic() < deadline, page
        time.sleep(0.5)


def _sink_pid(up: subprocess.Popen[str]) -> int:
    children = Path(f"/proc/{up.pid}/task/{up.pid}/children").read_text().split()
    [pid] = [int(p) for p in children if b"tracing.sink" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pid


def _holds_the_engine(pid: int) -> bool:
    return "_chdb" in Path(f"/proc/{pid}/maps").read_text()


def _started_without_the_engine(pid: int) -> bool:
    """The sink runs (not in the middle of its exec) and has not loaded the engine."""
    return b"tracing.sink" in Path(f"/proc/{pid}/cmdline").read_bytes() and not _holds_the_engine(pid)


def test_a_run_on_the_embedded_platform_is_one_trace_read_back_through_the_api(env, started, tmp_path):
    port, log = free_port(), tmp_path / "up.log"
    process = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)
    banner = wait_for_banner(process, log)
    key = api_key(env)
    base = f"http://127.0.0.1:{port}/api/v1"

    status, run = post(f"{base}/agents/demo/runs/", key, {"input": "Weather in Rome?"})
    assert (status, run["status"]) == (201, "completed")
    trace = _run_trace(base, key, run["id"])

    assert "Traces:  http://127.0.0.1" in banner
    names = [span["name"] for span in trace["spans"]]
    assert names[:4] == ["POST api/v1/agents/<slug:agent>/runs/", TASK, "queue.wait", "agent.run"]
    assert sorted(names[4:]) == ["chat demo", "chat demo", "tool.call"]
    assert [span["depth"] for span in trace["spans"]] == [0, 1, 2, 2, 3, 3, 3]
    assert trace["statuses"] == ["completed"]
    assert signal_stop(process, signal.SIGTERM) == 0
    assert "span sink: serving" in log.read_text()


def test_an_idle_sink_frees_the_engine_and_opens_it_again_for_spans_and_queries(started, tmp_path):
    env = embedded_env(
        tmp_path / "data",
        AGENTPLATFORM_WEB_WORKERS="1",
        AGENTPLATFORM_TRACE_FLUSH_INTERVAL="0.2",
        AGENTPLATFORM_TRACE_SINK_INTERVAL="0.2",
        AGENTPLATFORM_TRACE_SINK_IDLE_SECONDS="1",
    )
    port, log = free_port(), tmp_path / "up.log"
    process = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)
    wait_for_banner(process, log)
    key = api_key(env)
    base = f"http://127.0.0.1:{port}/api/v1"
    sink = _sink_pid(process)
    assert _started_without_the_engine(sink)  # nothing to do yet: the store is not open

    # When a run's spans arrive and its trace is read, the sink opens the store
    status, first = post(f"{base}/agents/demo/runs/", key, {"input": "Weather in Rome?"})
    assert (status, len(_run_trace(base, key, first["id"])["spans"])) == (201, 7)
    # Then, idle, it frees it (the same process, started again without it)
    wait_until(lambda: _started_without_the_engine(sink), timeout=30)

    # And the next run's spans and query open it again, with the first run's trace still there
    status, second = post(f"{base}/agents/demo/runs/", key, {"input": "Weather in Paris?"})
    assert (status, len(_run_trace(base, key, second["id"])["spans"])) == (201, 7)
    assert len(_run_trace(base, key, first["id"])["spans"]) == 7
    assert signal_stop(process, signal.SIGTERM) == 0
    assert log.read_text().count("span sink: idle for 1s") >= 1
