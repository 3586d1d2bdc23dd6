"""Typed readers for environment variables that fail fast with ImproperlyConfigured."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def _number(name: str, default: float, kind: type[int] | type[float], minimum: float) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a {kind.__name__}, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value: int = _number(name, default, int, minimum)
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    value: float = _number(name, default, float, minimum)
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_pair(name: str) -> tuple[str, str] | None:
    """Two comma-separated values (`HTTP_X_FORWARDED_PROTO,https`), or None when unset or empty."""
    items = env_list(name, [])
    if not items:
        return None
    if len(items) != 2:  # noqa: PLR2004  # a pair
        raise ImproperlyConfigured(
            f"{name} must be two comma-separated values (header,value), got {os.environ[name]!r}"
        )
    return items[0], items[1]


_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}


def shared_service(url: str) -> str | None:
    """The host of a service URL on another machine; None for the embedded defaults
    (no URL, SQLite, a Unix socket, or this machine)."""
    parts = urlsplit(url)
    if parts.scheme in ("", "sqlite", "unix"):
        return None
    socket_dir = dict(parse_qsl(parts.query)).get("host", "")
    if socket_dir.startswith("/"):
        return None
    host = (parts.hostname or "").lower()
    return None if host in _LOCAL_HOSTS else host


def secret_key(data_dir: Path) -> str:
    """`DJANGO_SECRET_KEY`; with none, on one host, a key generated once into the data directory.

    A deployment whose database or Redis lives on another machine may have several hosts, and
    every one must sign sessions and derive encryption keys from the same secret: there the
    variable is required."""
    key = env_str("DJANGO_SECRET_KEY", "")
    if key:
        return key
    for variable in ("DATABASE_URL", "REDIS_URL"):
        host = shared_service(env_str(variable, ""))
        if host:
            raise ImproperlyConfigured(
                f"DJANGO_SECRET_KEY must be set: {variable} points at a shared service ({host}), and every host "
                "must sign sessions and encrypt stored secrets with the same key. Set it to the same long random "
                "value on every host."
            )
    path = data_dir / "secret_key"  # embedded: generated once, kept with the data
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def database_from_url(url: str, *, sqlite_default: Path) -> dict[str, Any]:
    """A DATABASES entry from `postgres://user:pass@host:port/name?opt=v` or `sqlite:///path`."""
    if not url:
        return _sqlite(sqlite_default)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite(Path(unquote(parts.path)) if parts.path not in ("", "/") else sqlite_default)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(f"DATABASE_URL scheme {parts.scheme!r} is not supported (postgres or sqlite)")
    return _postgres(
        url,
        "DATABASE_URL",
        pool_timeout=env_float("DATABASE_POOL_TIMEOUT", 10.0),
        connect_timeout=env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=2),
    )


# Seconds a replica may take to give a connection (connecting included) before the read goes
# to the primary instead: a replica that is down costs a request this long, once per check.
REPLICA_CONNECT_TIMEOUT = 2


def replica_databases(urls: list[str], *, primary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """DATABASES entries `replica1`, `replica2`, ... for `DATABASE_REPLICA_URLS` (PostgreSQL
    hot standbys of the primary). In tests each mirrors the primary's test database: streaming
    replication copies the database the test run creates on the primary, so none is created."""
    if urls and not primary["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS needs a PostgreSQL primary: set DATABASE_URL to it")
    entries = {}
    for number, url in enumerate(urls, start=1):
        if urlsplit(url).scheme not in ("postgres", "postgresql"):
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URLS: {_redacted(url)!r} is not a PostgreSQL URL "
                "(postgres://user:password@host:port/name, comma-separated)"
            )
        entry = _postgres(
            url, "DATABASE_REPLICA_URLS", pool_timeout=REPLICA_CONNECT_TIMEOUT, connect_timeout=REPLICA_CONNECT_TIMEOUT
        )
        entries[f"replica{number}"] = {**entry, "TEST": {"MIRROR": "default"}}
    return entries


def _redacted(url: str) -> str:
    """`url` without its password, for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def _postgres(url: str, variable: str, *, pool_timeout: float, connect_timeout: int) -> dict[str, Any]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{variable}: {_redacted(url)!r} has an invalid port ({exc})") from exc
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    host = unquote(parts.hostname or "")
    pool_size = env_int("DATABASE_POOL_MAX_SIZE", 10)
    if pool_size:
        # Django runs each ASGI request on its own thread, and connections are per thread:
        # without a pool every request would open (and leak) a connection.
        options["pool"] = {"min_size": 1, "max_size": pool_size, "timeout": pool_timeout}
    # A server that does not answer, or a statement stuck behind a lock, is an error (503
    # database_unavailable on a request), not a request that hangs. Migrations are exempt
    # (agentplatform.apps turns the statement timeout off around them).
    options.setdefault("connect_timeout", connect_timeout)
    server_settings = []
    statement_timeout = env_float("DATABASE_STATEMENT_TIMEOUT", 30.0)
    if statement_timeout:
        server_settings.append(f"-c statement_timeout={round(statement_timeout * 1000)}")
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        # Parameters bound on the server, and a statement a connection has run 5 times is
        # prepared: PostgreSQL parses it once. It still plans each execution with its values
        # (a plan made for any session would read a long session's messages to sort them).
        # Off for a pooler that cannot keep prepared statements (PgBouncer < 1.21 in transaction mode).
        options.update(server_side_binding=True, prepare_threshold=5)
        server_settings.append("-c plan_cache_mode=force_custom_plan")
    if server_settings:
        options["options"] = " ".join([options.get("options", ""), *server_settings]).strip()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        # A socket directory may be given as ?host=/path, as libpq allows.
        "HOST": options.pop("host", host),
        "PORT": str(port or ""),
        "CONN_MAX_AGE": 0 if pool_size else env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


def _sqlite(path: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Kept for the life of the thread: threads come from bounded pools, and opening a
        # SQLite connection (with its PRAGMAs) costs more than the statement it serves.
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
