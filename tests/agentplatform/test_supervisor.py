"""The supervisor's own parts: the plan `up` hands it, how it probes its children, how it restarts them."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from agentplatform.supervisor import MAX_CRASHES, Plan, ProcessSpec, Supervisor, answers, python_command
from tests.infra import free_port, wait_until


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok/" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_plan_survives_its_trip_through_the_environment():
    plan = Plan(
        specs=[
            ProcessSpec("redis", ["redis-server"], ready="redis://127.0.0.1:1/0", service=True),
            ProcessSpec("web-1", ["python", "-m", "daphne"], pass_fds=(5,), env={"SOME": "value"}),
        ],
        health="http://127.0.0.1:2/api/v1/health/",
        banner="\nagentplatform is up\n",
        log_level="INFO",
        log_format="%(message)s",
    )

    assert Plan.loads(plan.dumps()) == plan


def test_answers_a_redis_that_replies_to_ping_and_nothing_on_a_closed_port():
    assert answers(os.environ["REDIS_URL"])
    assert not answers(f"redis://127.0.0.1:{free_port()}/0")


def test_answers_an_http_server_only_with_a_200(web):
    assert answers(f"{web}/ok/")
    assert not answers(f"{web}/starting/")
    assert not answers(f"http://127.0.0.1:{free_port()}/ok/")


def _run_in_thread(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    """The supervisor's loop on a thread (signals are the main thread's: the test stops it by hand)."""
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(supervisor.run(lambda: True, lambda: None)), daemon=True)
    thread.start()
    return thread, codes


@pytest.fixture
def no_signal_handlers(monkeypatch):
    monkeypatch.setattr(signal, "signal", lambda sig, handler: handler)  # only the main thread may set them


def test_a_child_that_dies_is_restarted_and_the_others_keep_running(no_signal_handlers, caplog):
    sleeper = python_command("-c", "import time; time.sleep(600)")
    supervisor = Supervisor([ProcessSpec("steady", sleeper), ProcessSpec("victim", sleeper)], restart_delay=0.05)
    thread, codes = _run_in_thread(supervisor)
    wait_until(lambda: len(supervisor.children) == 2)
    steady, victim = supervisor.children
    first_pid = victim.process.pid

    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: victim.process.pid != first_pid and victim.process.poll() is None)

    assert steady.process.poll() is None
    assert "victim was killed by SIGKILL; restarting it in 0.05s" in caplog.text
    supervisor.stop_requested = signal.SIGTERM
    thread.join(timeout=30)
    assert codes == [0]


def test_a_child_that_keeps_crashing_stops_everything_with_an_error(no_signal_handlers, caplog):
    supervisor = Supervisor(
        [
            ProcessSpec("steady", python_command("-c", "import time; time.sleep(600)")),
            ProcessSpec("broken", python_command("-c", "raise SystemExit(3)")),
        ],
        restart_delay=0.01,
    )
    thread, codes = _run_in_thread(supervisor)
    thread.join(timeout=60)

    assert codes == [1]
    assert f"broken exited with code 3: {MAX_CRASHES} crashes within 60s; giving up, stopping everything" in caplog.text
    assert supervisor.children == []  # every child stopped
