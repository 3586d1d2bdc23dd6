"""The benchmark's own stack: PostgreSQL, Redis, the fake model server and the platform.

`running_stack()` starts them in that order and always stops them in reverse (SIGTERM,
then SIGKILL after a grace period), then removes its temporary directory, also when the
benchmark fails or is interrupted. Redis is the one `manage.py up` would embed (same
binary and options), started here and handed to `up` as REDIS_URL so that the streaming
benchmark's own Daphne processes can share it.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentplatform.embedded import redis_server
from agentplatform.supervisor import answers

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres.sh"
PYTHON = sys.executable
PORT_RANGE = (20000, 29999)
START_TIMEOUT = 120.0
STOP_GRACE = 20.0


@dataclass(frozen=True)
class Stack:
    workdir: Path
    database_url: str
    model_url: str
    base_url: str
    api_key: str
    platform_pid: int
    env: dict[str, str]  # the platform's environment (DATABASE_URL, REDIS_URL, ...): for more servers like it


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the results table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def publish(markdown: str, path: Path) -> None:
    """The results: to stdout, and to `path` (under the git-ignored bench/results/)."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(markdown)
    print(markdown)
    log(f"written to {path}")


def free_port(taken: set[int]) -> int:
    """A random port in 20000-29999 that nothing listens on (and we have not handed out)."""
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 20000-29999")


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {START_TIMEOUT:g}s")
        time.sleep(0.1)


def _terminate(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {process.pid}) ignored SIGTERM for {STOP_GRACE:g}s; killing it")
            process.kill()
            process.wait()
    log(f"stopped {name} (pid {process.pid}, exit code {process.returncode})")


def spawn(
    cleanup: contextlib.ExitStack, argv: list[str], env: dict[str, str], logfile: Path, name: str
) -> subprocess.Popen[bytes]:
    """Start a child in its own session (Ctrl-C reaches only us; we stop it), logging to a file."""
    with logfile.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    cleanup.callback(_terminate, process, name)
    log(f"started {name} (pid {process.pid}), log: {logfile}")
    return process


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit, for this process and every server it starts afterwards."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def accepts(port: int) -> bool:
    """Something listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_daphne(
    cleanup: contextlib.ExitStack,
    application: str,
    env: dict[str, str],
    logfile: Path,
    port: int,
    *,
    module: str = "daphne",
) -> subprocess.Popen[bytes]:
    """One Daphne process serving `application` on 127.0.0.1:port; `module` "agentplatform.web"
    runs it as the distributed setup does (docs/guides/deploying.md)."""
    argv = [PYTHON, "-m", module, "-b", "127.0.0.1", "-p", str(port), application]
    process = spawn(cleanup, argv, env, logfile, f"daphne {application}")
    wait_for(lambda: accepts(port), process, f"daphne {application}")
    return process


def _stop_postgres(directory: Path, env: dict[str, str]) -> None:
    subprocess.run([str(POSTGRES_SCRIPT), "stop", str(directory)], env=env, check=False, timeout=STOP_GRACE * 3)
    log("stopped PostgreSQL")


def remove_dir(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    log(f"removed {workdir}")


def start_postgres(cleanup: contextlib.ExitStack, directory: Path, port: int) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PG_OPTIONS"}  # durability stays on: no fsync=off
    cleanup.callback(_stop_postgres, directory, env)
    url = _last_line_of([str(POSTGRES_SCRIPT), "start", str(directory), str(port)], env, "scripts/postgres.sh start")
    log(f"started PostgreSQL on port {port}")
    return url


def _start_fake_model(cleanup: contextlib.ExitStack, workdir: Path, port: int) -> str:
    logfile = workdir / "llm_server.log"
    argv = [PYTHON, "-m", "tests.fakes.llm_server", "--port", str(port), "--mode", "one-tool-call"]
    process = spawn(cleanup, argv, dict(os.environ), logfile, "fake model server")
    wait_for(lambda: "listening on" in logfile.read_text(errors="replace"), process, "fake model server")
    return f"http://127.0.0.1:{port}"


def _start_redis(cleanup: contextlib.ExitStack, workdir: Path) -> str:
    spec, url = redis_server(workdir / "data")
    process = spawn(cleanup, spec.argv, dict(os.environ), workdir / "redis.log", "Redis")
    wait_for(lambda: answers(url), process, "Redis")
    return url


def platform_env(database_url: str, redis_url: str, model_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        AGENTPLATFORM_DATA_DIR=str(data_dir),
        OPENAI_BASE_URL=f"{model_url}/v1",
        OPENAI_API_KEY="bench",
        AGENTPLATFORM_AGENTS="bench.agents:agents",
    )
    return env


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v1/health/", timeout=1) as response:  # our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start_platform(cleanup: contextlib.ExitStack, env: dict[str, str], workdir: Path, port: int) -> tuple[str, int]:
    argv = [PYTHON, "manage.py", "up", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(cleanup, argv, env, workdir / "platform.log", "platform (manage.py up)")
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: healthy(base_url), process, "platform")
    return base_url, process.pid


def create_api_key(env: dict[str, str]) -> str:
    argv = [PYTHON, "manage.py", "create_api_key", "--user", "bench", "--name", "bench"]
    return _last_line_of(argv, env, "create_api_key")


def _last_line_of(argv: list[str], env: dict[str, str], what: str) -> str:
    """Run a command to completion; its last line of output, or an error naming it."""
    result = subprocess.run(  # our own commands
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=START_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="agentplatform-bench-"))
        cleanup.callback(remove_dir, workdir)
        workdir.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root: it must reach its directory
        limit = raise_open_files_limit()  # before any server starts: they inherit it
        log(f"open files limit (RLIMIT_NOFILE) raised to {limit:,} for the bench and its servers")
        ports: set[int] = set()
        database_url = start_postgres(cleanup, workdir / "postgres", free_port(ports))
        redis_url = _start_redis(cleanup, workdir)
        model_url = _start_fake_model(cleanup, workdir, free_port(ports))
        env = platform_env(database_url, redis_url, model_url, workdir / "data")
        base_url, pid = _start_platform(cleanup, env, workdir, free_port(ports))
        log(f"platform is healthy at {base_url}")
        yield Stack(workdir, database_url, model_url, base_url, create_api_key(env), pid, env)
