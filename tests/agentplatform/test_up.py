"""`manage.py up` and `serve(agent)` start a working platform and stop cleanly."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.embedded import (
    ROOT,
    api_key,
    call,
    child_pid,
    embedded_env,
    get,
    launch,
    port_closed,
    post,
    signal_stop,
    wait_for_banner,
)
from tests.infra import free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return embedded_env(tmp_path / "data")


def _get_text(url: str, key: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return str(response.read().decode())


def test_up_serves_the_demo_agent_and_stops_on_sigterm(env, started, tmp_path):
    port, log = free_port(), tmp_path / "up.log"
    process = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)

    banner = wait_for_banner(process, log)
    key = api_key(env)
    status, run = post(f"http://127.0.0.1:{port}/api/v1/agents/demo/runs/", key, {"input": "Weather in Rome?"})
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
    assert signal_stop(process, signal.SIGTERM) == 0
    assert port_closed(port)


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
    port, log = free_port(), tmp_path / "serve.log"
    process = launch([sys.executable, str(script), str(port)], env, log, cwd=tmp_path)
    started.append(process)

    banner = wait_for_banner(process, log)
    status, run = post(f"http://127.0.0.1:{port}/api/v1/agents/shouter/runs/", api_key(env), {"input": "shout Hello"})

    assert "shouter" in banner
    assert (status, run["status"]) == (201, "completed")
    assert run["messages"][2]["content"] == "HELLO!"
    assert signal_stop(process, signal.SIGINT) == 0
    assert port_closed(port)


def test_a_paused_run_survives_a_restart_of_everything_and_completes_when_approved(env, started, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    first = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, tmp_path / "1.log")
    started.append(first)
    wait_for_banner(first, tmp_path / "1.log")
    key = api_key(env, "--scopes", "approvals:decide")
    status, run = post(f"{base}/agents/demo/runs/", key, {"input": "Email bob@example.com about Lunch"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    [approval] = get(f"{base}/approvals/?status=pending", key)["results"]
    assert signal_stop(first, signal.SIGTERM) == 0  # web, worker, beat and Redis all stop

    second = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, tmp_path / "2.log")
    started.append(second)
    wait_for_banner(second, tmp_path / "2.log")
    edited = {**approval["arguments"], "to": "carol@example.com"}
    status, decided = post(f"{base}/approvals/{approval['id']}/approve", key, {"arguments": edited})
    assert (status, decided["status"]) == (200, "approved")

    deadline = time.monotonic() + 60
    while (final := get(f"{base}/runs/{run['id']}/", key))["status"] != "completed":
        assert time.monotonic() < deadline, final
        time.sleep(0.2)
    assert "email to carol@example.com queued" in final["output"]  # the edited arguments ran
    assert get(f"{base}/approvals/{approval['id']}/", key)["executed_at"] is not None
    assert signal_stop(second, signal.SIGTERM) == 0


def test_a_second_up_on_the_same_data_directory_refuses_to_start(env, started, tmp_path):
    first = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(free_port())], env, tmp_path / "1.log")
    started.append(first)
    wait_for_banner(first, tmp_path / "1.log")

    second = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert second.returncode != 0
    assert "another `manage.py up` is running with the data directory" in second.stderr
    assert first.poll() is None
    assert signal_stop(first, signal.SIGTERM) == 0


def _children(pid: int) -> list[str]:
    """The command lines of a process's children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ") for child in children]


def test_up_with_two_run_workers_runs_beat_in_one_of_them(env, started, tmp_path):
    port, log = free_port(), tmp_path / "up.log"
    argv = [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port), "--workers", "1", "--run-workers", "2"]
    process = launch(argv, env, log)
    started.append(process)
    wait_for_banner(process, log)
    key = api_key(env)

    runs = [post(f"http://127.0.0.1:{port}/api/v1/agents/demo/runs/", key, {"input": f"Hi {n}"}) for n in range(6)]

    assert [(status, run["status"]) for status, run in runs] == [(201, "completed")] * 6
    workers = [line for line in _children(process.pid) if " worker " in line]
    assert len(workers) == 2
    assert sum("--beat-thread" in line for line in workers) == 1  # one scheduler, whatever the workers
    assert signal_stop(process, signal.SIGTERM) == 0


HOLDER = '''
import time
from agentplatform import Agent

class Holder(Agent):
    """Holds its worker for as long as it lives when asked to "hold"; answers at once otherwise."""

    def run(self, input, ctx):
        if input == "hold":
            time.sleep(600)
        return f"done: {input}"

agent = Holder(name="holder")
'''


def _up_with_holder(env: dict[str, str], tmp_path: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "holder.py").write_text(HOLDER)
    env = {
        **env,
        "PYTHONPATH": f"{ROOT}:{tmp_path}",
        "AGENTPLATFORM_AGENTS": "holder:agent",
        "AGENTPLATFORM_RUN_LEASE_SECONDS": "2",  # a lost run's lease lapses soon
        "AGENTPLATFORM_REAP_INTERVAL_SECONDS": "1",
        "AGENTPLATFORM_WORKER_DRAIN_SECONDS": "1",  # stopping, the worker waits no longer for held runs
    }
    port = free_port()
    argv = [sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port), "--workers", "1", "--run-workers", "1"]
    process = launch(argv, env, log)
    wait_for_banner(process, log)
    return process, f"http://127.0.0.1:{port}/api/v1"


def test_a_killed_worker_is_restarted_and_the_run_it_held_is_failed_not_left_running(env, started, tmp_path):
    log = tmp_path / "up.log"
    process, base = _up_with_holder(env, tmp_path, log)
    started.append(process)
    key = api_key(env)
    status, held = post(f"{base}/agents/holder/runs/", key, {"input": "hold", "background": True})
    assert status == 202
    wait_until(lambda: get(f"{base}/runs/{held['id']}/", key)["status"] == "running", timeout=60)

    worker = child_pid(process.pid, " worker ")
    assert worker is not None

    os.kill(worker, signal.SIGKILL)

    wait_until(lambda: get(f"{base}/runs/{held['id']}/", key)["status"] == "failed", timeout=120)
    assert get(f"{base}/runs/{held['id']}/", key)["error"]["code"] == "worker_lost"
    body = {"input": "again", "session_id": held["session_id"]}
    status, run = post(f"{base}/agents/holder/runs/", key, body)  # the restarted worker takes it
    assert (status, run["status"], run["output"]) == (201, "completed", "done: again")
    assert "worker was killed by SIGKILL; restarting it in 1s" in log.read_text()
    assert process.poll() is None
    assert signal_stop(process, signal.SIGTERM) == 0


def _answers(url: str, key: str) -> bool:
    try:
        get(url, key)
    except OSError:  # refused, reset, or an HTTP error
        return False
    return True


def test_a_killed_web_process_is_restarted_and_the_api_answers_again(env, started, tmp_path):
    log = tmp_path / "up.log"
    process, base = _up_with_holder(env, tmp_path, log)
    started.append(process)
    key = api_key(env)
    web = child_pid(process.pid, " agentplatform.web ")
    assert web is not None

    os.kill(web, signal.SIGKILL)

    wait_until(lambda: child_pid(process.pid, " agentplatform.web ") not in (None, web), timeout=60)
    wait_until(lambda: _answers(f"{base}/agents/", key), timeout=60)
    status, run = post(f"{base}/agents/holder/runs/", key, {"input": "hello"})
    assert (status, run["status"], run["output"]) == (201, "completed", "done: hello")
    assert "web-1 was killed by SIGKILL; restarting it in 1s" in log.read_text()
    assert signal_stop(process, signal.SIGTERM) == 0


def test_stopping_up_with_spans_still_buffered_prints_no_traceback(env, started, tmp_path):
    env = {**env, "AGENTPLATFORM_TRACE_FLUSH_INTERVAL": "3600"}  # every process holds its spans until it exits
    port, log = free_port(), tmp_path / "up.log"
    process = launch([sys.executable, str(ROOT / "manage.py"), "up", "--port", str(port)], env, log)
    started.append(process)
    wait_for_banner(process, log)
    status, _ = post(f"http://127.0.0.1:{port}/api/v1/agents/demo/runs/", api_key(env), {"input": "Weather in Oslo?"})
    assert status == 201

    assert signal_stop(process, signal.SIGTERM) == 0
    assert "Traceback" not in log.read_text()
    assert "agentplatform stopped." in log.read_text()


def test_sigterm_on_a_web_process_finishes_its_streams_and_waiting_requests(env, started, tmp_path):
    log = tmp_path / "up.log"
    process, base = _up_with_holder(env, tmp_path, log)
    started.append(process)
    key = api_key(env)
    _, held = post(f"{base}/agents/holder/runs/", key, {"input": "hold", "background": True})
    headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
    request = urllib.request.Request(f"{base}/runs/{held['id']}/events/", headers=headers)
    stream = urllib.request.urlopen(request, timeout=60)
    while stream.readline() != b"event: run.started\n":  # the stream is open and following the run
        pass
    waiting: list[tuple[int, dict]] = []
    body = {"input": "hold"}  # waits for its run to finish
    waiter = threading.Thread(target=lambda: waiting.append(call("POST", f"{base}/agents/holder/runs/", key, body)))
    waiter.start()
    wait_until(lambda: len(get(f"{base}/sessions/", key)["results"]) == 2, timeout=60)  # the second run is stored
    web = child_pid(process.pid, " agentplatform.web ")
    assert web is not None

    os.kill(web, signal.SIGTERM)

    rest = stream.read().decode()  # the stream ends, with a reconnect hint
    waiter.join(timeout=60)
    assert rest.endswith("retry: 1000\n: the server is stopping; reconnect\n\n")
    [(status, run)] = waiting
    assert (status, run["status"] in ("queued", "running")) == (202, True)  # answered with the run, which goes on
    wait_until(lambda: _answers(f"{base}/runs/{run['id']}/", key), timeout=60)  # the web process restarted
    assert "web-1 exited with code 0; restarting it" in log.read_text()
    assert signal_stop(process, signal.SIGTERM) == 0
