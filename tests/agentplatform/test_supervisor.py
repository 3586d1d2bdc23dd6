"""The supervisor's own parts: the plan `up` hands it, and how it probes its children."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import pytest

from agentplatform.supervisor import Plan, ProcessSpec, answers
from tests.infra import free_port


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
