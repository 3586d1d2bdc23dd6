"""Finished spans as rows of the `spans` table, encoded for ClickHouse's JSONCompactEachRow.

The same bytes travel through the Redis route (embedded) or straight to ClickHouse
(distributed), and ClickHouse parses them: the Python side only builds lists and calls
`json.dumps` once per batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tracing import attributes as attr

# The insert's columns, in the order `row()` builds them; the table has these and more.
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
    "run_id",
    "session_id",
    "agent",
    "owner_id",
    "run_status",
    "operation",
    "provider",
    "model",
    "tool",
    "permission",
    "outcome",
    "input_tokens",
    "output_tokens",
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


def _text(attributes: Mapping[str, Any], key: str) -> str:
    value = attributes.get(key)
    return "" if value is None else str(value)


def _count(attributes: Mapping[str, Any], key: str) -> int:
    value = attributes.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def _plain(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


def row(span: ReadableSpan) -> list[Any]:
    """One span as a row in COLUMNS order."""
    context = span.context
    start = span.start_time or 0
    end = span.end_time or start
    attributes = span.attributes or {}
    parent = span.parent
    model = _text(attributes, attr.GEN_AI_REQUEST_MODEL)
    nested = bool(attributes.get(attr.MODEL_CALL_NESTED))  # part of an outer model call: counted there
    return [
        f"{context.trace_id:032x}" if context else "",
        f"{context.span_id:016x}" if context else "",
        f"{parent.span_id:016x}" if parent is not None else "",
        span.name,
        _KINDS.get(span.kind, "internal"),
        _text(span.resource.attributes, "service.name"),
        timestamp(start),
        timestamp(end),
        max(end - start, 0),
        _STATUSES.get(span.status.status_code, "unset"),
        span.status.description or "",
        _text(attributes, attr.RUN_ID),
        _text(attributes, attr.SESSION_ID),
        _text(attributes, attr.AGENT_NAME),
        _text(attributes, attr.OWNER_ID),
        _text(attributes, attr.RUN_STATUS),
        "" if nested else _text(attributes, attr.GEN_AI_OPERATION),
        _text(attributes, attr.GEN_AI_PROVIDER) or _text(attributes, attr.GEN_AI_SYSTEM),
        model,
        _text(attributes, attr.GEN_AI_TOOL_NAME),
        _text(attributes, attr.TOOL_PERMISSION),
        _text(attributes, attr.TOOL_OUTCOME) or _text(attributes, attr.APPROVAL_STATUS),
        0 if nested else _count(attributes, attr.GEN_AI_INPUT_TOKENS),
        0 if nested else _count(attributes, attr.GEN_AI_OUTPUT_TOKENS),
        json.dumps(_plain(attributes), ensure_ascii=False, default=str),
        json.dumps(
            [{"name": e.name, "time_ns": e.timestamp, "attributes": _plain(e.attributes)} for e in span.events],
            ensure_ascii=False,
            default=str,
        )
        if span.events
        else "[]",
        json.dumps(
            [
                {"trace_id": f"{link.context.trace_id:032x}", "span_id": f"{link.context.span_id:016x}"}
                for link in span.links
            ]
        )
        if span.links
        else "[]",
    ]


def encode(rows: Iterable[list[Any]]) -> bytes:
    """Rows as JSONCompactEachRow: `[...],[...]` (ClickHouse takes commas between rows, so
    two payloads join with a comma into one insert)."""
    return json.dumps(list(rows), ensure_ascii=False, default=str)[1:-1].encode()
