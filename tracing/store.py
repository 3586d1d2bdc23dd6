"""The span store: the one module that talks to ClickHouse (through clickhouse-connect).

- Distributed (`CLICKHOUSE_URL`): each process has its own HTTP client, made on first use
  (after a fork, the child makes its own), and inserts and queries directly.
- Embedded: one process opens the chDB directory (`open_embedded()`: the span sink that
  `up` starts; the tests and the benchmark do it too). In that process the store is local;
  everywhere else `insert_spans` and `query` go through the Redis route to it.

`query` takes the caller's `owner` as a required argument and every query names it, so a
query cannot forget to scope (None: staff, who see every trace).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.conf import settings

from tracing import route
from tracing.conf import tracing_settings
from tracing.errors import StoreUnavailable
from tracing.rows import COLUMNS

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

SPANS = "spans"
OWNER_PARAMETER = "{owner:String}"
# A span's attributes, events and links arrive as JSON objects and arrays, kept as text.
_INSERT_SETTINGS = {"input_format_json_read_objects_as_strings": 1, "input_format_json_read_arrays_as_strings": 1}


def _driver() -> ModuleType:
    """clickhouse-connect (about 7 MiB), imported by the process that makes a client: with the
    embedded store, only the span sink does; the web and worker processes route through Redis."""
    import clickhouse_connect  # noqa: PLC0415  # see above

    return clickhouse_connect


def _failures() -> tuple[type[Exception], ...]:
    """What a failed ClickHouse call raises (read only when a call raised)."""
    from clickhouse_connect.driver.exceptions import ClickHouseError  # noqa: PLC0415  # see _driver

    return (ClickHouseError, OSError)


@dataclass(frozen=True)
class Result:
    columns: tuple[str, ...]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class _State:
    """This process's clients: one over HTTP (distributed), and the embedded engine if this
    process opened it. A forked child has neither until it makes its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.http: tuple[int, str, Client] | None = None  # (pid, url, client)
        self.embedded: tuple[int, str, Client] | None = None  # (pid, directory, client)

    def owned(self) -> tuple[int, str, Client] | None:
        return self.embedded if self.embedded is not None and self.embedded[0] == os.getpid() else None

    def local(self) -> bool:
        return bool(tracing_settings().CLICKHOUSE_URL) or self.owned() is not None

    def get(self) -> Client:
        url = tracing_settings().CLICKHOUSE_URL
        with self.lock:
            if not url:
                owned = self.owned()
                if owned is None:
                    raise StoreUnavailable("The embedded trace store is open in the span sink, not in this process.")
                return owned[2]
            if self.http is not None and self.http[:2] == (os.getpid(), url):
                return self.http[2]
            try:
                # No session: the web and worker threads share the client, and a ClickHouse
                # session takes one query at a time.
                client = _driver().get_client(
                    dsn=url, connect_timeout=5, send_receive_timeout=30, autogenerate_session_id=False
                )
            except _failures() as exc:
                raise StoreUnavailable(f"ClickHouse is not reachable: {exc}") from exc
            self.http = (os.getpid(), url, client)
            return client


_state = _State()


def embedded_path() -> Path:
    return Path(tracing_settings().CHDB_PATH or settings.DATA_DIR / "clickhouse")


def open_embedded(path: Path | None = None) -> None:
    """Open the embedded engine in this process, which then owns it (one process per directory)."""
    directory = path or embedded_path()
    directory.mkdir(parents=True, exist_ok=True)
    with _state.lock:
        try:
            client = _driver().get_client(dsn=f"chdb://{directory}")
        except _failures() as exc:  # e.g. another process holds the directory's lock
            raise StoreUnavailable(f"Cannot open the embedded trace store at {directory}: {exc}") from exc
        _state.embedded = (os.getpid(), str(directory), client)


def close() -> None:
    """Close this process's clients (the embedded engine's lock is released)."""
    with _state.lock:
        for held in (_state.http, _state.embedded):
            if held is not None and held[0] == os.getpid():
                held[2].close()
        _state.http = _state.embedded = None


def is_local() -> bool:
    """Whether this process talks to ClickHouse itself (else: through the route)."""
    return _state.local()


def insert_spans(payload: bytes, count: int) -> None:
    """Encoded rows (`rows.encode`) into the spans table, or onto the route to it."""
    if _state.local():
        insert_payloads([payload])
    else:
        route.push(payload, count)


def insert_payloads(payloads: list[bytes]) -> None:
    """Several encoded batches as one insert (local only); StoreUnavailable if it fails."""
    try:
        _state.get().raw_insert(
            SPANS, COLUMNS, insert_block=b",".join(payloads), fmt="JSONCompactEachRow", settings=_INSERT_SETTINGS
        )
    except _failures() as exc:
        raise StoreUnavailable(f"The trace store refused the spans: {exc}") from exc


def query(sql: str, parameters: dict[str, Any], *, owner: str | None) -> Result:
    """A read, scoped to `owner` (None: staff). The SQL must use {owner:String}: '' means everyone."""
    if OWNER_PARAMETER not in sql:
        raise ValueError("a trace query must scope by {owner:String}")
    bound = {**parameters, "owner": owner or ""}
    if not _state.local():
        answer = route.call(sql, bound, tracing_settings().QUERY_TIMEOUT)
        return Result(tuple(answer["columns"]), answer["rows"])
    return run_read(sql, bound)


def run_read(sql: str, parameters: dict[str, Any]) -> Result:
    """A read on the local client (the sink answers the route's queries with this)."""
    if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
        raise ValueError("only reads go through the trace store's query path")
    try:
        result = _state.get().query(sql, parameters=parameters)
    except _failures() as exc:
        raise StoreUnavailable(f"The trace store failed the query: {exc}") from exc
    return Result(tuple(result.column_names), [list(row) for row in result.result_rows])


def command(sql: str, parameters: dict[str, Any] | None = None) -> Any:
    """DDL and other statements (migrations), on the local client."""
    try:
        return _state.get().command(sql, parameters=parameters)
    except _failures() as exc:
        raise StoreUnavailable(f"The trace store failed a statement: {exc}") from exc


PING_TIMEOUT = 1.0  # seconds


def check() -> str:
    """Whether spans reach the store now: "off" (tracing disabled), "ok", or StoreUnavailable
    (ClickHouse does not answer; or, embedded, Redis or the span sink does not)."""
    if not tracing_settings().ENABLED:
        return "off"
    if _state.local():  # ClickHouse over HTTP, or the embedded store open in this process
        if not _state.get().ping(timeout=PING_TIMEOUT):
            raise StoreUnavailable("ClickHouse does not answer.")
    elif not route.sink_alive():
        raise StoreUnavailable("The span sink (the process that owns the embedded trace store) is not running.")
    return "ok"
