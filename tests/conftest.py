"""Shared fixtures: the fake model server, users, keys and an authenticated API client."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.celery import Queue, app
from agents.engine import started_engine
from tests import sample_agents as test_agents
from tests.factories import create_api_key, create_user, signed_in_admin
from tests.fakes.llm_server import Delay, FakeLLMServer, Text
from tests.infra import database_url, free_port, stop, wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _no_connection_outlives_the_suite(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Torn down after the worker and servers that use the test database, and before the
    database is dropped: close every connection, pooled ones too, so that dropping it does
    not find "other users" (a pool keeps idle connections open)."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            # Connections that threads of the tests took from the pool and never gave back
            # (Django's test client does not close them) are ended, not waited for.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        for wrapper in connections.all(initialized_only=True):
            wrapper.close()
            close_pool = getattr(wrapper, "close_pool", None)
            if callable(close_pool):
                close_pool()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """A real Celery worker (in this process, on threads) consuming from the real Redis."""
    queues = [str(Queue.RUNS), str(Queue.SCHEDULES), str(Queue.WEBHOOKS)]
    with start_worker(app, pool="threads", concurrency=4, perform_ping_check=False, loglevel="WARNING", queues=queues):
        yield


@dataclass(frozen=True)
class Daphne:
    url: str  # ws://host:port
    log: Path  # its output and access log
    pid: int


@pytest.fixture(scope="session")
def daphne(django_db_setup: None, celery_worker: None, tmp_path_factory: Any) -> Iterator[Daphne]:
    """A real Daphne process serving the app on the test database, the test Redis as its
    channel layer; the in-process worker executes the runs it starts."""
    with serving_daphne(tmp_path_factory.mktemp("daphne") / "daphne.log") as server:
        yield server


def start_worker_process(
    log: Path, broker: str, settings: dict[str, str], *, threads: int = 4
) -> subprocess.Popen[bytes]:
    """A worker process as `up` starts one, on the test database, with a broker of its own
    (so that the in-process worker cannot take its tasks) and `settings` in its environment;
    returned once it is ready. The caller stops it."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": broker,
        "PYTHONPATH": str(ROOT),
        **settings,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "agentplatform.celery:app", "worker", "-Q", "runs",
             "--pool", "threads", "--concurrency", str(threads), "--without-gossip", "--without-mingle", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until(lambda: "ready." in log.read_text() or process.poll() is not None, timeout=60)
    assert process.poll() is None, log.read_text()
    return process


@contextlib.contextmanager
def serving_daphne(log: Path, **settings: str) -> Iterator[Daphne]:
    """Daphne in a subprocess on the test database and Redis, with `settings` added to its
    environment; its output and access log go to `log`."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        **settings,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--access-log", str(log),
             "agentplatform.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: _listening(port) or process.poll() is not None, timeout=60)
        assert process.poll() is None, log.read_text()
        yield Daphne(f"ws://127.0.0.1:{port}", log, process.pid)
    finally:
        stop(process)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLLMServer]:
    """One fake provider server for the session; the real SDKs find it through their env vars."""
    mp = pytest.MonkeyPatch()
    with FakeLLMServer() as server:
        mp.setenv("OPENAI_BASE_URL", server.openai_base_url)
        mp.setenv("OPENAI_API_KEY", "test-openai-key")
        mp.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        mp.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")
        yield server
    mp.undo()


@pytest.fixture
def llm(llm_server: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The fake server, emptied before each test; a test's scripted replies must all be used."""
    llm_server.reset()
    test_agents.CALLS.clear()
    yield llm_server
    assert llm_server.pending() == 0, "the test scripted replies that were never requested"


class Api:
    """A JSON client with a bearer key. Returns (status, parsed body)."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.key = key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def request(self, method: str, path: str, body: Any = None, *, raw: str | bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        call: Callable[..., Any] = getattr(self.client, method.lower())
        kwargs: dict[str, Any] = {"headers": self._headers()}
        if data is not None:
            kwargs.update(data=data, content_type="application/json")
        response = call(path, **kwargs)
        content = response.content
        return response.status_code, (json.loads(content) if content else None)

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None) -> tuple[int, Any]:
        return self.request("POST", path, body, raw=raw)

    def patch(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> tuple[int, Any]:
        return self.request("DELETE", path)


@pytest.fixture
def alice(db: None) -> Any:
    return create_user("alice")


@pytest.fixture
def api(alice: Any, celery_worker: None) -> Iterator[Api]:
    """Alice's API client (a worker executes her runs). The test ends once the worker is idle,
    so that no run of this test still writes while the database is reset for the next."""
    _, key = create_api_key(alice)
    yield Api(key)
    wait_until(_worker_idle, timeout=30)


def _worker_idle() -> bool:
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        queued = sum(client.llen(str(queue)) for queue in (Queue.RUNS, Queue.SCHEDULES, Queue.WEBHOOKS))
    running = started_engine()
    in_flight = running.in_flight if running is not None else 0
    return not worker_state.active_requests and not worker_state.reserved_requests and queued == 0 and not in_flight


MODEL_SECONDS = 2.0


@pytest.fixture
def slow_model(llm: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """Every model call answers after MODEL_SECONDS, as a real model takes seconds."""
    llm.responder = lambda request: Delay(MODEL_SECONDS, Text("done"))
    yield llm
    llm.responder = None


@pytest.fixture
def make_api(db: None) -> Callable[..., Api]:
    def make(username: str = "bob", **key_options: Any) -> Api:
        _, key = create_api_key(create_user(username), **key_options)
        return Api(key)

    return make


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at its end are killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def staff(db: None) -> tuple[Any, TOTPDevice]:
    """A superuser with a confirmed authenticator: (user, device)."""
    user = get_user_model().objects.create_superuser("root", "root@example.com", "s3cret-pass")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return user, device


@pytest.fixture
def admin_client(staff: tuple[Any, TOTPDevice]) -> Client:
    """Signed in to the admin through its real login form: password plus the TOTP code."""
    user, device = staff
    return signed_in_admin(user, device, "s3cret-pass")
