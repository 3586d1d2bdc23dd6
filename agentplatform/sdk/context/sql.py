"""A read-only SQL query as a source (SQLite and PostgreSQL).

Three guards, any one of which refuses a write: the statement is checked before it is
sent (one statement; it starts with SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN; no
keyword that writes or locks, no function with side effects), the connection is read-only
(SQLite: opened `mode=ro` with `query_only`; PostgreSQL: a READ ONLY transaction with a
statement timeout, rolled back), and you should still connect as a role that may only read.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import psycopg

from agentplatform.sdk.context.base import (
    ContextError,
    ContextItem,
    ContextProvider,
    Secret,
    as_secret,
    env_name,
    resolve_credential,
)

_READ_STARTS = frozenset({"select", "with", "values", "table", "show", "explain"})
# fmt: off
_WRITE_WORDS = frozenset({  # keywords that write, lock or change the session
    "insert", "update", "delete", "merge", "upsert", "replace", "create", "alter", "drop", "truncate", "rename",
    "grant", "revoke", "copy", "call", "do", "execute", "exec", "attach", "detach", "pragma", "vacuum",
    "analyze", "reindex",
    "cluster", "lock", "refresh", "comment", "security", "set", "reset", "begin", "start", "commit", "rollback",
    "savepoint", "release", "prepare", "deallocate", "listen", "notify", "unlisten", "load", "import", "into", "share",
    "nowait", "checkpoint", "discard",
})
_SIDE_EFFECT_FUNCTIONS = frozenset({  # functions a read-only transaction does not stop
    "nextval", "setval", "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
    "pg_rotate_logfile", "pg_switch_wal", "pg_create_restore_point", "pg_promote", "lo_import", "lo_export",
    "lo_unlink", "lo_create", "lo_from_bytea", "dblink", "dblink_exec", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_try_advisory_lock", "pg_notify", "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file",
    "load_extension", "writefile", "readfile",
})
# fmt: on
_LEXEME = re.compile(
    r"""(?P<skip>--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<semicolon>;)""",
    re.DOTALL,
)


class WriteRefused(ValueError):
    """The statement could write (or lock, or has side effects): it is not run."""


def check_read_only(sql: str) -> None:
    """Raise WriteRefused unless `sql` is one statement that only reads."""
    words: list[str] = []
    statement_ended = False
    for match in _LEXEME.finditer(sql):
        if match.group("skip"):
            continue
        if match.group("semicolon"):
            statement_ended = True
            continue
        if statement_ended:
            raise WriteRefused("only one statement may be run")
        words.append(match.group("word").lower())
    if not words or words[0] not in _READ_STARTS:
        raise WriteRefused("the query must start with SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN")
    for word in words:
        if word in _WRITE_WORDS:
            raise WriteRefused(f"the query contains {word.upper()}, which may write or lock; it was not run")
        if word in _SIDE_EFFECT_FUNCTIONS:
            raise WriteRefused(f"the query calls {word}(), which has side effects; it was not run")


def _sqlite_ro_uri(url: str) -> str:
    """`sqlite:///path/to/app.db` (as in DATABASE_URL) as a read-only SQLite URI."""
    path = unquote(urlsplit(url).path)
    if path in ("", "/"):
        raise ContextError("a SQLite URL names a file: sqlite:///path/to/app.db")
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


class SQLContext(ContextProvider):
    """A read-only query; each row becomes an item.

    Args:
        query: One SELECT (or WITH ... SELECT) statement; `%(name)s` placeholders for
            PostgreSQL, `:name` or `?` for SQLite, filled from `params`.
        url / url_env: The connection URL (a credential: it may hold a password), e.g.
            `postgresql://reader:pw@db/app` or `sqlite:///srv/app.db`.
        max_rows: At most this many rows are read.
        title_column: The column used as each item's title.
    """

    kind = "sql"
    credential_arg = "url"

    def __init__(
        self,
        query: str,
        *,
        url: Secret | str | None = None,
        url_env: str | None = None,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        max_rows: int = 100,
        title_column: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        check_read_only(query)
        if (url is None) == (url_env is None):
            raise ValueError("give the connection as url= or url_env=, one of them")
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError("max_rows must be a positive integer")
        self.query = query
        self.url = as_secret(url)
        self.url_env = env_name(url_env, "url_env")
        self.params = params
        self.max_rows = max_rows
        self.title_column = title_column

    async def fetch(self) -> list[ContextItem]:
        url = resolve_credential(self.url, self.url_env, what="connection URL")
        columns, rows = await asyncio.to_thread(self._run, url)
        items = []
        for index, row in enumerate(rows, start=1):
            values = dict(zip(columns, row, strict=True))
            title = str(values[self.title_column]) if self.title_column in values else f"row {index}"
            items.append(ContextItem(title=title, text="\n".join(f"{k}: {v}" for k, v in values.items())))
        return items

    def _run(self, url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        scheme = urlsplit(url).scheme
        if scheme == "sqlite":
            return self._sqlite(url)
        if scheme in ("postgres", "postgresql"):
            return self._postgres(url)
        raise ContextError(f"unsupported database URL scheme {scheme!r} (sqlite, postgresql)")

    def _sqlite(self, url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            connection = sqlite3.connect(_sqlite_ro_uri(url), uri=True, timeout=self.timeout)
        except sqlite3.Error as exc:
            raise ContextError(f"cannot open the database: {exc}") from None
        try:
            connection.execute("PRAGMA query_only = ON")
            cursor = connection.execute(self.query, self.params or ())
            rows = cursor.fetchmany(self.max_rows)
            return [column[0] for column in cursor.description or ()], rows
        except sqlite3.Error as exc:
            raise ContextError(f"the query failed: {exc}") from None
        finally:
            connection.close()

    def _postgres(self, url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            connection = psycopg.connect(url, connect_timeout=max(1, int(self.timeout)))
        except psycopg.Error as exc:
            raise ContextError(f"cannot connect to the database: {type(exc).__name__}") from None
        try:
            connection.read_only = True  # every transaction starts as BEGIN READ ONLY
            with connection.transaction(force_rollback=True), connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(self.timeout * 1000)}ms",))
                cursor.execute(self.query, self.params)
                rows = cursor.fetchmany(self.max_rows)
                return [column.name for column in cursor.description or ()], rows
        except psycopg.Error as exc:
            raise ContextError(f"the query failed: {exc.diag.message_primary or type(exc).__name__}") from None
        finally:
            connection.close()
