"""Finished spans as rows of the `spans` table, encoded for ClickHouse's JSONCompactEachRow.

The same bytes travel through the Redis route (embedded) or straight to ClickHouse
(distributed), and ClickHouse parses them: the Python side only builds a short list per
span and dumps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, SpanKind, StatusCode

# The insert's columns, in the order `row()` builds them. The span's attributes travel as one
# JSON object (ClickHouse reads it into a String column); the columns the lookups and metrics
# use (run, agent, owner, model, tokens, ...) are extracted from it, and the times made from
# the nanoseconds, by the table's DEFAULT expressions (clickhouse_migrations/0001_spans.py).
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_ns",
    "end_ns",
    "status_code",
    "status_message",
    "attributes",
    "events",
    "links",
)

_KINDS = {
    SpanKind.INTERNAL: "internal",
    SpanKind.SERVER: "server",
    SpanKind.CLIENT: "client",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_STATUSES = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}
_dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _events(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in events]


def _links(links: Sequence[Link]) -> list[dict[str, str]]:
    return [{"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"} for link in links]


def row(span: ReadableSpan, service: str) -> list[Any]:
    """One span as a row in COLUMNS order (through the span's public API)."""
    context, parent, status = span.context, span.parent, span.status
    start = span.start_time or 0
    return [
        f"{context.trace_id:032x}" if context else "",
        f"{context.span_id:016x}" if context else "",
        f"{parent.span_id:016x}" if parent is not None else "",
        span.name,
        _KINDS.get(span.kind, "internal"),
        service,
        start,
        span.end_time or start,
        _STATUSES.get(status.status_code, "unset"),
        status.description or "",
        dict(span.attributes or {}),
        _events(span.events),
        _links(span.links),
    ]


def _fast_row(span: ReadableSpan, service: str) -> list[Any]:
    """`row()`, reading the SDK's span fields directly: half the cost of its properties, which
    copy (attributes, events, links). The SDK is pinned; a test checks both agree, and
    `encode` falls back to `row()` if a field is not there."""
    context, parent, status = span._context, span._parent, span._status
    if context is None:
        raise AttributeError("a span without a context")  # `row()` writes it
    attributes = span._attributes
    plain = getattr(attributes, "_dict", None)  # BoundedAttributes keeps a plain dict
    start = span._start_time or 0
    events, links = span._events, span._links
    return [
        context.trace_id.to_bytes(16, "big").hex(),
        context.span_id.to_bytes(8, "big").hex(),
        parent.span_id.to_bytes(8, "big").hex() if parent is not None else "",
        span._name,
        _KINDS.get(span._kind, "internal"),
        service,
        start,
        span._end_time or start,
        _STATUSES.get(status.status_code, "unset"),
        status.description or "",
        plain if isinstance(plain, dict) else dict(attributes or {}),
        _events(events) if events else [],
        _links(links) if links else [],
    ]


def encode(spans: Iterable[ReadableSpan]) -> bytes:
    """Spans as JSONCompactEachRow rows, `[...],[...]` (ClickHouse takes commas between rows,
    so two payloads join with a comma into one insert). Each row is dumped at once: its lists
    and dicts are freed as it goes, which spares the garbage collector most of the batch."""
    services: dict[int, str] = {}  # per resource: a process has one
    encoded = []
    for span in spans:
        resource = span.resource
        service = services.get(id(resource))
        if service is None:
            service = services[id(resource)] = str(resource.attributes.get("service.name", ""))
        try:
            fields = _fast_row(span, service)
        except AttributeError:  # another SDK version: its public API
            fields = row(span, service)
        encoded.append(_dumps(fields))
    return ",".join(encoded).encode()
