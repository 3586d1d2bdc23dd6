"""Driving a whole embedded platform as a user does: `manage.py up` or a `serve()` script
in a subprocess, its banner, a key from `create_api_key`, and HTTP calls to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
UP = [sys.executable, str(ROOT / "manage.py"), "up"]


def embedded_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """A fresh embedded deployment: its own data directory, SQLite and Redis, real settings;
    none of the suite's own configuration (its database, broker, providers, platform settings)."""
    skipped = ("DATABASE_URL", "OPENAI", "ANTHROPIC", "REDIS_URL", "CELERY_", "AGENTPLATFORM_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(skipped)}
    environment.update(
        DJANGO_SETTINGS_MODULE="agentplatform.settings",
        AGENTPLATFORM_DATA_DIR=str(data_dir),
        PYTHONPATH=str(ROOT),
        **settings,
    )
    return environment


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def launch(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[str]:
    with log.open("w") as out:  # the child keeps its own copy of the file descriptor
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_for_banner(process: subprocess.Popen[str], log: Path, timeout: float = 60) -> str:
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


def signal_stop(process: subprocess.Popen[str], sig: int) -> int:
    process.send_signal(sig)
    return process.wait(timeout=30)


def api_key(env: dict[str, str], *options: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "create_api_key", "--user", "tester", *options],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def get(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def call(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Any status, with its JSON body (an error's too)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def child_pid(pid: int, part: str) -> int | None:
    """The pid of the child of `pid` whose command line has `part` (None while there is none)."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if part in Path(f"/proc/{child}/cmdline").read_text().replace("\0", " "):
            return int(child)
    return None
