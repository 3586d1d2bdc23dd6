"""The servers the capacity benchmark loads: the fake model (asyncio, with a latency per call) and
the platform as a new user starts it, `manage.py up` with the defaults, on SQLite (no
DATABASE_URL: the embedded topology) or on PostgreSQL (DATABASE_URL only). Redis is the one
`up` embeds in both; no run-concurrency flag unless asked for.

Each is started inside a `contextlib.ExitStack` and stopped by it (bench/stack.py's spawn).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from bench.capacity_probe import Database, PostgresDatabase, SqliteDatabase
from bench.stack import PYTHON, create_api_key, free_port, healthy, log, spawn, start_postgres, wait_for

MODEL_LATENCY = 0.5  # seconds per model call: a run with one tool call waits 1 s on the model
ENV_PREFIXES = ("AGENTPLATFORM_",)
ENV_NAMES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CLICKHOUSE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY")


@dataclass(frozen=True)
class Server:
    """One loaded server: where it listens, its process (the root of its tree), its database."""

    label: str
    host: str
    port: int
    pid: int
    database: Database
    api_key: str = ""


def start_model(
    cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], latency: float = MODEL_LATENCY
) -> tuple[str, int]:
    """The asyncio fake model in `one-tool-call` mode, each call answered after `latency` seconds."""
    port = free_port(ports)
    logfile = workdir / "llm_async_server.log"
    argv = [PYTHON, "-m", "tests.fakes.llm_async_server", "--port", str(port), "--mode", "one-tool-call"]
    argv += ["--latency", str(latency)]
    process = spawn(cleanup, argv, dict(os.environ), logfile, "fake model server (asyncio)")
    wait_for(lambda: "listening on" in logfile.read_text(errors="replace"), process, "fake model server")
    return f"http://127.0.0.1:{port}", process.pid


def clean_env() -> dict[str, str]:
    """This process's environment without the platform's settings: `up` starts from its defaults."""
    return {
        name: value for name, value in os.environ.items() if name not in ENV_NAMES and not name.startswith(ENV_PREFIXES)
    }


def platform_env(model_url: str, data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = clean_env()
    env.update(
        AGENTPLATFORM_DATA_DIR=str(data_dir),
        OPENAI_BASE_URL=f"{model_url}/v1",
        OPENAI_API_KEY="bench",
        AGENTPLATFORM_AGENTS="bench.agents:agents",
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


@dataclass(frozen=True)
class PlatformOptions:
    topology: str  # "embedded" (SQLite) or "postgres"
    run_concurrency: int | None  # None: up's default


def start_platform(
    cleanup: contextlib.ExitStack, workdir: Path, ports: set[int], model_url: str, options: PlatformOptions
) -> Server:
    """`manage.py up` on a fresh data directory (and a fresh PostgreSQL for that topology)."""
    home = workdir / options.topology
    home.mkdir()
    database_url = None
    if options.topology == "postgres":
        database_url = start_postgres(cleanup, home / "postgres", free_port(ports))
    env = platform_env(model_url, home / "data", database_url)
    port = free_port(ports)
    argv = [PYTHON, "manage.py", "up", "--host", "127.0.0.1", "--port", str(port)]
    if options.run_concurrency is not None:
        argv += ["--run-concurrency", str(options.run_concurrency)]
    process = spawn(cleanup, argv, env, home / "platform.log", f"platform ({options.topology})")
    wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), process, "platform")
    log(f"platform ({options.topology}) is healthy on port {port}")
    database: Database
    if database_url is not None:
        postgres = PostgresDatabase(database_url, home / "postgres" / "data")
        cleanup.callback(postgres.close)
        database = postgres
    else:
        database = SqliteDatabase(home / "data" / "db.sqlite3", process.pid)
    label = "PostgreSQL" if database_url else "embedded (SQLite)"
    return Server(label, "127.0.0.1", port, process.pid, database, create_api_key(env))
