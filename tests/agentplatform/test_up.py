"""`manage.py up` and `serve(agent)` start a working platform and stop cleanly."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh embedded deployment: its own data directory, SQLite, real settings."""
    skipped = ("DATABASE_URL", "OPENAI", "ANTHROPIC", "REDIS_URL", "CELERY_")  # `up` starts its own Redis
    environment = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
    environment.update(
        DJANGO_SETTINGS_MODULE="agentplatform.settings",
        AGENTPLATFORM_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
    )
    environment.pop("AGENTPLATFORM_AGENTS", None)
    return environment


def _launch(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    with log.open("w") as out:  # the child keeps its own copy of the file descriptor
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)


def _wait_for_banner(process: subprocess.Popen[str], log: Path, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = log.read_text() if log.exists() else ""
        if "Stop with Ctrl-C." in seen:
            return seen
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no banner; exit={process.poll()} output:\n{seen}")


def _api_key(env: dict[str, str], *options: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "create_api_key", "--user", "tester", *options],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def _post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def _get(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _get_text(url: str, key: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return str(response.read().decode())


def _stop(process: subprocess.Popen[str], sig: int) -> int:
    process.send_signal(sig)
    return process.wait(timeout=30)


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_up_serves_the_demo_agent_and_stops_on_sigterm(env, started, tmp_path):
    port, log = _free_port(), tmp_path / "up.log"
    process = _launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)

    banner = _wait_for_banner(process, log)
    key = _api_key(env)
    status, run = _post(f"http://127.0.0.1:{port}/api/v1/agents/demo/runs/", key, {"input": "Weather in Rome?"})
    events = _get_text(f"http://127.0.0.1:{port}/api/v1/runs/{run['id']}/events/", key)

    assert f"http://127.0.0.1:{port}/api/v1/docs/" in banner
    assert "create_api_key" in banner
    assert "create_admin" in banner
    assert "demo (offline demo model, no LLM)" in banner
    assert (status, run["status"]) == (201, "completed")
    assert "Rome" in run["output"]
    kinds = [line for line in events.splitlines() if line.startswith("event: ")]
    assert [kind for kind, _ in itertools.groupby(kinds)] == [  # the answer streams in one or more deltas
        "event: run.started",
        "event: tool.call.started",
        "event: tool.call.completed",
        "event: message.delta",
        "event: message.completed",
        "event: run.completed",
    ]
    assert _stop(process, signal.SIGTERM) == 0
    assert _port_closed(port)


def test_serve_runs_a_scripts_agent_and_stops_on_ctrl_c(env, started, tmp_path):
    script = tmp_path / "shouter.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from agentplatform import Agent, serve, tool

            @tool
            def shout(text: str) -> str:
                \"\"\"Shout the text.\"\"\"
                return text.upper() + "!"

            agent = Agent(name="shouter", tools=[shout])

            if __name__ == "__main__":
                serve(agent, port=int(sys.argv[1]))
            """
        )
    )
    port, log = _free_port(), tmp_path / "serve.log"
    process = _launch([sys.executable, str(script), str(port)], env, log, cwd=tmp_path)
    started.append(process)

    banner = _wait_for_banner(process, log)
    status, run = _post(f"http://127.0.0.1:{port}/api/v1/agents/shouter/runs/", _api_key(env), {"input": "shout Hello"})

    assert "shouter" in banner
    assert (status, run["status"]) == (201, "completed")
    assert run["messages"][2]["content"] == "HELLO!"
    assert _stop(process, signal.SIGINT) == 0
    assert _port_closed(port)


def test_a_paused_run_survives_a_restart_of_everything_and_completes_when_approved(env, started, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    first = _launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, tmp_path / "1.log")
    started.append(first)
    _wait_for_banner(first, tmp_path / "1.log")
    key = _api_key(env, "--scopes", "approvals:decide")
    status, run = _post(f"{base}/agents/demo/runs/", key, {"input": "Email bob@example.com about Lunch"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    [approval] = _get(f"{base}/approvals/?status=pending", key)["results"]
    assert _stop(first, signal.SIGTERM) == 0  # web, worker, beat and Redis all stop

    second = _launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, tmp_path / "2.log")
    started.append(second)
    _wait_for_banner(second, tmp_path / "2.log")
    edited = {**approval["arguments"], "to": "carol@example.com"}
    status, decided = _post(f"{base}/approvals/{approval['id']}/approve", key, {"arguments": edited})
    assert (status, decided["status"]) == (200, "approved")

    deadline = time.monotonic() + 60
    while (final := _get(f"{base}/runs/{run['id']}/", key))["status"] != "completed":
        assert time.monotonic() < deadline, final
        time.sleep(0.2)
    assert "email to carol@example.com queued" in final["output"]  # the edited arguments ran
    assert _get(f"{base}/approvals/{approval['id']}/", key)["executed_at"] is not None
    assert _stop(second, signal.SIGTERM) == 0
