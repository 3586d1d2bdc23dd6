"""Finished spans as rows of the `spans` table, encoded for ClickHouse's JSONCompactEachRow.

The same bytes travel through the Redis route (embedded) or straight to ClickHouse
(distributed), and ClickHouse parses them: the Python side only builds a short list per
span and dumps it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

# The insert's columns, in the order `row()` builds them. The span's attributes travel as one
# JSON object (ClickHouse reads it into a String column); the columns the lookups and metrics
# use (run, agent, owner, model, tokens, ...) are extracted from it by the table's DEFAULT
# expressions (tracing/clickhouse_migrations/0001_spans.py), in ClickHouse rather than here.
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service",
    "start_time",
    "end_time",
    "duration_ns",
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


def timestamp(ns: int) -> str:
    """A DateTime64(9) as ClickHouse reads it from JSON: seconds with nine decimals."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def row(span: ReadableSpan, service: str) -> list[Any]:
    """One span as a row in COLUMNS order."""
    context = span.context
    start = span.start_time or 0
    end = span.end_time or start
    parent = span.parent
    status = span.status
    events, links = span.events, span.links
    return [
        f"{context.trace_id:032x}" if context else "",
        f"{context.span_id:016x}" if context else "",
        f"{parent.span_id:016x}" if parent is not None else "",
        span.name,
        _KINDS.get(span.kind, "internal"),
        service,
        timestamp(start),
        timestamp(end),
        max(end - start, 0),
        _STATUSES.get(status.status_code, "unset"),
        status.description or "",
        dict(span.attributes or {}),
        [{"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})} for e in events]
        if events
        else [],
        [{"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"} for link in links]
        if links
        else [],
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
        encoded.append(json.dumps(row(span, service), ensure_ascii=False, default=str))
    return ",".join(encoded).encode()
