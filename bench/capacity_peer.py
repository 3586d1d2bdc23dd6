"""The peer under the same load: Agno's AgentOS (bench/peer_agno_app.py) under uvicorn.

Agno is not a dependency of the project: it is installed from PyPI, once, into a virtualenv of
its own under the user's cache directory (`~/.cache/agentplatform-bench/peer-agno-VERSION`,
about a minute the first time), and reused by later runs. uvicorn runs the app as
`agent_os.serve()` would by default: one process. If the virtualenv cannot be made (no
network, no wheel for this Python), the peer is skipped and the report says why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from bench.capacity_probe import SqliteDatabase
from bench.capacity_stack import Server, clean_env
from bench.stack import ROOT, free_port, log, spawn, wait_for

AGNO_VERSION = "3.1.10"
REQUIREMENT = f"agno[os,openai,sqlite,postgres]=={AGNO_VERSION}"
INSTALL_TIMEOUT = 900
LABEL = f"agno {AGNO_VERSION} (SQLite)"


def peer_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "agentplatform-bench" / f"peer-agno-{AGNO_VERSION}"


def _works(python: Path) -> bool:
    check = [str(python), "-c", "import agno.os, uvicorn, sqlalchemy.ext.asyncio, psycopg"]
    return python.exists() and subprocess.run(check, capture_output=True, check=False, timeout=120).returncode == 0


def ensure_peer_python() -> Path:
    """The peer virtualenv's python, made on first use; raises RuntimeError if it cannot be made."""
    venv = peer_venv()
    python = venv / "bin" / "python"
    if _works(python):
        return python
    log(f"installing {REQUIREMENT} into {venv} (once)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", REQUIREMENT],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[-2:])} failed: {done.stderr.strip()[-300:]}")
    if not _works(python):
        raise RuntimeError(f"{venv}: agno installed but does not import")
    return python


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def serve_peer(cleanup: contextlib.ExitStack, home: Path, ports: set[int], label: str, **env: str) -> tuple[int, int]:
    """uvicorn serving bench/peer_agno_app.py with `env` added (the model's URL, where to store);
    its port and pid once it answers."""
    python = ensure_peer_python()
    home.mkdir()
    full_env = clean_env()
    full_env.update(AGNO_TELEMETRY="false", PYTHONPATH=str(ROOT), OPENAI_API_KEY="bench", **env)
    port = free_port(ports)
    argv = [str(python), "-m", "uvicorn", "bench.peer_agno_app:app", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning"]
    process = spawn(cleanup, argv, full_env, home / "uvicorn.log", f"peer ({label}, uvicorn)")
    wait_for(lambda: _healthy(f"http://127.0.0.1:{port}"), process, "peer")
    log(f"peer ({label}) is healthy on port {port}")
    return port, process.pid


def start_peer(cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], model_url: str) -> Server:
    home = workdir / "peer"
    database = home / "agno.db"
    port, pid = serve_peer(cleanup, home, ports, LABEL, OPENAI_BASE_URL=f"{model_url}/v1", PEER_DB_FILE=str(database))
    return Server(LABEL, "127.0.0.1", port, pid, SqliteDatabase(database, pid, has_runs=False))
