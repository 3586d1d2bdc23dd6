"""The Redis route to the embedded span store.

Only one process may open the embedded engine's directory (chDB locks it), so in the
embedded topology the span sink (`manage.py span_sink`, which `up` starts) owns it, and
every other process reaches it through Redis:

- spans: each export is one list element (`<count>\\n<rows>`); the sink reads a run of
  elements, inserts them as one batch, and only then trims them off the list, so a sink
  that dies mid-insert loses nothing (the batch is inserted again). The list is bounded by
  a span count (ROUTE_MAX_SPANS): past it, senders keep their spans and retry.
- queries: a request list the sink answers on a reply key per request (the admin and the
  API in web processes read traces this way). The sink refreshes a heartbeat key, so a
  caller without a sink fails fast instead of waiting out its timeout.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings

from tracing.conf import tracing_settings
from tracing.errors import RouteFull, RouteUnavailable, StoreUnavailable

logger = logging.getLogger(__name__)

HEARTBEAT_TTL = 10  # seconds: the sink refreshes it every few seconds
REPLY_TTL = 60

_PUSH = """
local pending = tonumber(redis.call('GET', KEYS[2]) or '0')
if pending + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Keys:
    spans: str
    pending: str
    queries: str
    sink: str

    def reply(self, request_id: str) -> str:
        return f"{self.spans}:reply:{request_id}"


def keys() -> Keys:
    base = tracing_settings().ROUTE_KEY
    return Keys(base, f"{base}:pending", f"{base}:queries", f"{base}:sink")


class _Connection:
    """Redis clients per process (a forked child makes its own): one for commands, which
    fail past REDIS_TIMEOUT, one for blocking reads, which wait longer than the longest (a
    query's reply)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0
        self.client: redis.Redis | None = None
        self.blocking: redis.Redis | None = None
        self.push: Any = None

    def get(self, *, blocking: bool = False) -> redis.Redis:
        with self.lock:
            if self.client is None or self.blocking is None or self.pid != os.getpid():
                url = tracing_settings().REDIS_URL or settings.REDIS_URL
                timeout = settings.REDIS_TIMEOUT
                self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
                self.blocking = redis.Redis.from_url(
                    url, socket_timeout=tracing_settings().QUERY_TIMEOUT + timeout, socket_connect_timeout=timeout
                )
                self.push = self.client.register_script(_PUSH)
                self.pid = os.getpid()
            return self.blocking if blocking else self.client


_connection = _Connection()


def client(*, blocking: bool = False) -> redis.Redis:
    return _connection.get(blocking=blocking)


def push(payload: bytes, count: int) -> None:
    """Queue encoded rows for the sink; RouteFull when the route holds its maximum already."""
    client()
    k = keys()
    accepted = _connection.push(keys=[k.spans, k.pending], args=[b"%d\n" % count + payload, count, _max_spans()])
    if not accepted:
        raise RouteFull(f"{_max_spans()} spans are already waiting for the span sink")


def _max_spans() -> int:
    return tracing_settings().ROUTE_MAX_SPANS


@dataclass(frozen=True)
class Batch:
    payloads: list[bytes]
    spans: int
    elements: int


def take(max_elements: int, max_bytes: int) -> Batch:
    """The oldest waiting exports, up to a size (at least one; not removed until `ack`)."""
    found = cast(list[bytes], client().lrange(keys().spans, 0, max_elements - 1))
    payloads: list[bytes] = []
    spans = size = 0
    for element in found:
        if payloads and size + len(element) > max_bytes:
            break
        count, _, payload = element.partition(b"\n")
        spans += int(count)
        size += len(element)
        payloads.append(payload)
    return Batch(payloads, spans, len(payloads))


def ack(batch: Batch) -> None:
    k = keys()
    with client().pipeline() as pipe:
        pipe.ltrim(k.spans, batch.elements, -1)
        pipe.decrby(k.pending, batch.spans)
        pipe.execute()


def waiting() -> int:
    """Spans in the route, waiting for the sink."""
    return int(client().get(keys().pending) or 0)


# --- queries ---------------------------------------------------------------------------


def heartbeat() -> None:
    client().set(keys().sink, os.getpid(), ex=HEARTBEAT_TTL)


def sink_alive() -> bool:
    """Whether a span sink is serving (it refreshes its heartbeat every few seconds);
    RouteUnavailable when Redis does not answer."""
    try:
        return bool(client().exists(keys().sink))
    except redis.RedisError as exc:
        raise RouteUnavailable(
            f"Redis (the route to the trace store) did not answer: {exc}", details={"dependency": "redis"}
        ) from exc


def call(sql: str, parameters: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run a query in the sink process; its result ({"columns", "rows"})."""
    if not sink_alive():
        raise StoreUnavailable("The span sink (the process that owns the embedded trace store) is not running.")
    request_id = uuid.uuid4().hex
    request = {"id": request_id, "sql": sql, "parameters": parameters, "deadline": time.time() + timeout}
    try:
        client().rpush(keys().queries, json.dumps(request))
        reply = client(blocking=True).blpop([keys().reply(request_id)], timeout=max(1, round(timeout)))
    except redis.RedisError as exc:
        raise RouteUnavailable(
            f"Redis (the route to the trace store) failed: {exc}", details={"dependency": "redis"}
        ) from exc
    if reply is None:
        raise StoreUnavailable(f"The trace store did not answer within {timeout:g}s.")
    result: dict[str, Any] = json.loads(reply[1])
    if "error" in result:
        raise StoreUnavailable(f"The trace store failed the query: {result['error']}")
    return result


def next_queries(wait: float) -> list[dict[str, Any]]:
    """Requests waiting for the sink (waiting up to `wait` seconds for the first); expired ones are skipped."""
    k = keys()
    if wait > 0:
        popped = cast(tuple[bytes, bytes] | None, client(blocking=True).blpop([k.queries], timeout=wait))
        raw = [popped[1]] if popped else []
    else:
        raw = cast(list[bytes], client().lpop(k.queries, 1) or [])
    if not raw:
        return []
    raw += cast(list[bytes], client().lpop(k.queries, 50) or [])
    now = time.time()
    return [request for request in map(json.loads, raw) if request.get("deadline", now) >= now]


def answer(request_id: str, result: dict[str, Any]) -> None:
    key = keys().reply(request_id)
    with client().pipeline() as pipe:
        pipe.rpush(key, json.dumps(result, default=str))
        pipe.expire(key, REPLY_TTL)
        pipe.execute()
