"""`manage.py up [--host H] [--port N]`: migrate, then run the embedded platform in the foreground.

Once its Django work is done (migrations, the agents, the banner's text), the command
replaces its process with the supervisor (`agentplatform.supervisor`), which loads no Django.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from agentplatform import embedded
from agentplatform.conf import platform_settings
from agentplatform.env import env_int
from agentplatform.settings import LOG_FORMAT
from agentplatform.supervisor import Plan, ProcessSpec, exec_plan, listening_socket, python_command
from agents.selectors import visible_agents
from tracing.conf import tracing_settings
from tracing.store import embedded_path


class Command(BaseCommand):
    help = "Migrate the database, then run the platform's processes until Ctrl-C or SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=env_int("AGENTPLATFORM_WEB_WORKERS", max(1, (os.cpu_count() or 1) // 2), minimum=1),
            help="Web server processes sharing the port (default: one per two cores).",
        )
        parser.add_argument(
            "--run-concurrency",
            type=int,
            default=platform_settings().RUN_CONCURRENCY,
            help="Runs the embedded worker carries at once (AGENTPLATFORM_RUN_CONCURRENCY, default 256).",
        )
        parser.add_argument(
            "--run-workers",
            type=int,
            default=env_int("AGENTPLATFORM_RUN_WORKERS", os.cpu_count() or 1, minimum=1),
            help="Worker processes (default: one per core); the first also runs beat.",
        )
        parser.add_argument("--no-migrate", action="store_true", help="Skip migrations (done elsewhere).")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        lock = _lock(settings.DATA_DIR)
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=0)
        call_command("sync_agents", verbosity=0)
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        fd = sock.fileno()
        # SIGTERM lets a web process finish its requests and streams (WEB_DRAIN_SECONDS), see agentplatform.web.
        grace = platform_settings().WEB_DRAIN_SECONDS + 5
        argv = python_command("-m", "agentplatform.web", "--fd", str(fd), "agentplatform.asgi:application")
        web = [ProcessSpec(f"web-{n}", argv, (fd,), grace=grace) for n in range(1, options["workers"] + 1)]
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104  # display only
        services = [
            *self._redis(),
            *self._span_store(migrate=not options["no_migrate"]),
            *embedded.celery_workers(options["run_workers"], options["run_concurrency"]),
            *web,
        ]
        plan = Plan(
            specs=services,
            health=f"{base}/api/v1/health/",
            banner=self._banner(base),
            log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            log_format=LOG_FORMAT,
            held_fds=[lock],
        )
        self.stdout.flush()
        connections.close_all()
        exec_plan(plan)  # keeps `sock` open: the web processes inherit it

    def _redis(self) -> list[ProcessSpec]:
        """An embedded Redis, unless REDIS_URL points at one."""
        if os.environ.get("REDIS_URL"):
            return []
        spec, url = embedded.redis_server(settings.DATA_DIR)
        # The children (web, worker) read it from the environment; this process too.
        os.environ["REDIS_URL"] = os.environ["CELERY_BROKER_URL"] = url
        return [spec]

    def _span_store(self, *, migrate: bool) -> list[ProcessSpec]:
        """The trace store is migrated here, before anything runs (embedded, this process opens
        it for that time). With CLICKHOUSE_URL every process writes to ClickHouse itself;
        embedded, the span sink owns the store, and opens it when there is work."""
        conf = tracing_settings()
        if not conf.ENABLED:
            return []
        if migrate:
            call_command("migrate_clickhouse", verbosity=0)
        return [] if conf.CLICKHOUSE_URL else [embedded.span_sink()]

    def _banner(self, base: str) -> str:
        rows = list(visible_agents(None))
        agents = ", ".join(
            f"{a.name}{' (offline demo model, no LLM)' if a.model.startswith('demo') else f' ({a.model})'}"
            for a in rows
        )
        example = rows[0].name if rows else "AGENT"
        manage = f"{_python()} manage.py"
        database = settings.DATABASES["default"]
        where = database["NAME"] if "sqlite" in database["ENGINE"] else f"PostgreSQL {database['HOST']}"
        return (
            f"\nagentplatform is up\n"
            f"  API:     {base}/api/v1/\n"
            f"  Docs:    {base}/api/v1/docs/  (with a key, or after signing in to the admin)\n"
            f"  Admin:   {base}/admin/\n"
            f"  Agents:  {agents or 'none (set AGENTPLATFORM_AGENTS)'}\n"
            f"  Data:    {where}\n"
            f"  Runs:    on Celery workers, broker {_redacted(os.environ.get('REDIS_URL', settings.REDIS_URL))}\n"
            f"  Traces:  {_traces(base)}\n\n"
            f"  An API key:     {manage} create_api_key --user you\n"
            f"  An admin login: {manage} create_admin --username admin\n"
            f'  A first run:    curl -s {base}/api/v1/agents/{example}/runs/ -H "Authorization: Bearer $KEY" \\\n'
            f"                    -H 'Content-Type: application/json' -d '{{\"input\": \"Weather in Paris?\"}}'\n\n"
            f"  Stop with Ctrl-C.\n"
        )


def _lock(data_dir: Path) -> int:
    """One `up` per data directory (its database, Redis files and trace store): a lock that the
    supervisor holds as long as it runs (the span sink opens the trace store only when it has
    work, so the store's own lock does not tell)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CommandError(f"another `manage.py up` is running with the data directory {data_dir}") from None
    return fd


def _redacted(url: str) -> str:
    """A URL without its password, for display."""
    scheme, sep, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}" if sep else url


def _traces(base: str) -> str:
    conf = tracing_settings()
    if not conf.ENABLED:
        return "off (AGENTPLATFORM_TRACING=false)"
    where = _redacted(conf.CLICKHOUSE_URL) if conf.CLICKHOUSE_URL else f"embedded ClickHouse in {embedded_path()}"
    return f"{base}/admin/tracing/trace/  ({where})"


def _python() -> str:
    """How to call this interpreter from the current directory (a venv's python, or python)."""
    relative = os.path.relpath(sys.executable)
    return relative if not relative.startswith("..") else "python"
