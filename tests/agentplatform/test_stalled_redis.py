"""A Redis that stalls (SIGSTOP: its connections stay open and nothing answers) under a real
`manage.py up`: requests that need it answer 503 `redis_unavailable` within the timeout,
write nothing, and `/api/v1/ready/` names it; once it answers again, so does the platform."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.embedded import ROOT, api_key, call, child_pid, embedded_env, launch, signal_stop, wait_for_banner
from tests.infra import free_port, wait_until

pytestmark = pytest.mark.slow


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_while_redis_is_frozen_requests_answer_503_and_write_nothing(started, tmp_path: Path):
    env = embedded_env(tmp_path / "data", AGENTPLATFORM_REDIS_TIMEOUT="1")
    port, log = free_port(), tmp_path / "up.log"
    argv = [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port), "--workers", "1", "--run-workers", "1"]
    process = launch(argv, env, log)
    started.append(process)
    wait_for_banner(process, log)
    base, key = f"http://127.0.0.1:{port}/api/v1", api_key(env)
    redis = child_pid(process.pid, "redis-server")
    assert redis is not None
    wait_until(lambda: call("GET", f"{base}/ready/", key)[0] == 200, timeout=60)  # the span sink's first heartbeat
    all_ok = {"status": "ready", "database": "ok", "redis": "ok", "broker": "ok", "span_route": "ok"}
    assert call("GET", f"{base}/ready/", key) == (200, all_ok)

    with frozen(redis):
        run = call("POST", f"{base}/agents/demo/runs/", key, {"input": "Weather in Rome?"})
        traces = call("GET", f"{base}/traces/", key)
        ready = call("GET", f"{base}/ready/", key)
        sessions = call("GET", f"{base}/sessions/", key)

    assert (run[0], run[1]["error"]["code"]) == (503, "redis_unavailable")
    assert (traces[0], traces[1]["error"]["code"]) == (503, "redis_unavailable")
    assert (ready[0], ready[1]["status"], ready[1]["database"]) == (503, "unavailable", "ok")
    assert "Timeout" in ready[1]["redis"]
    assert "Timeout" in ready[1]["broker"]
    assert (sessions[0], sessions[1]["results"]) == (200, [])  # the refused run wrote nothing
    status, body = call("POST", f"{base}/agents/demo/runs/", key, {"input": "Weather in Rome?"})
    assert (status, body["status"]) == (201, "completed")
    assert signal_stop(process, signal.SIGTERM) == 0
