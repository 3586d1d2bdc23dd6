"""The embedded topology, as `manage.py up` runs it: web processes and a worker send their
spans through Redis to the span sink, which owns the chDB store; the trace API, served by
a web process, reads it back through the same route."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from tests.embedded import ROOT, api_key, embedded_env, get, launch, post, signal_stop, wait_for_banner
from tests.infra import free_port

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


def test_a_run_on_the_embedded_platform_is_one_trace_read_back_through_the_api(env, started, tmp_path):
    port, log = free_port(), tmp_path / "up.log"
    process = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)
    banner = wait_for_banner(process, log)
    key = api_key(env)
    base = f"http://127.0.0.1:{port}/api/v1"

    status, run = post(f"{base}/agents/demo/runs/", key, {"input": "Weather in Rome?"})
    assert (status, run["status"]) == (201, "completed")
    deadline = time.monotonic() + 60
    while True:  # the sink may still be starting, and the spans are flushed every 0.2 s
        try:
            page = get(f"{base}/traces/?run={run['id']}", key)
        except OSError:  # 503 until the sink serves
            page = {"results": []}
        if page["results"] and page["results"][0]["span_count"] >= 7:
            break
        assert time.monotonic() < deadline, page
        time.sleep(0.5)
    trace = get(f"{base}/traces/{page['results'][0]['trace_id']}/", key)

    assert "Traces:  http://127.0.0.1" in banner
    names = [span["name"] for span in trace["spans"]]
    assert names[:4] == ["POST api/v1/agents/<slug:agent>/runs/", TASK, "queue.wait", "agent.run"]
    assert sorted(names[4:]) == ["chat demo", "chat demo", "tool.call"]
    assert [span["depth"] for span in trace["spans"]] == [0, 1, 2, 2, 3, 3, 3]
    assert trace["statuses"] == ["completed"]
    assert signal_stop(process, signal.SIGTERM) == 0
    assert "span sink: serving" in log.read_text()
