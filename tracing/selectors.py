"""Reads of the span store: the trace list, one trace, and what the metrics dashboard shows.

Every read takes `owner` (an owner id, or None for staff) and passes it to the store, which
binds it into the query: an API caller sees only traces that contain its runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentplatform.sdk import attributes as attr
from tracing import store
from tracing.errors import TraceNotFound

NEVER = 2**62  # nanoseconds: later than any span (year 2116)
LIST_LIMIT = 200


def ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def from_ns(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000_000, tz=UTC)


@dataclass(frozen=True)
class TraceFilter:
    agent: str = ""
    status: str = ""  # a run status: completed, failed, ...
    run: str = ""
    since_ns: int = 0
    until_ns: int = NEVER
    min_duration_ms: float = 0.0
    errors_only: bool = False
    limit: int = 50
    before: tuple[int, str] | None = None  # the cursor: (start ns, trace id) of the last row seen


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    start_ns: int
    duration_ns: int
    root_name: str
    span_count: int
    error_count: int
    agents: list[str]
    runs: list[str]
    statuses: list[str]
    input_tokens: int
    output_tokens: int

    @property
    def started_at(self) -> datetime:
        return from_ns(self.start_ns)

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    @property
    def cursor(self) -> tuple[int, str]:
        return (self.start_ns, self.trace_id)


# A trace summarised from its rows in `traces` (one per trace and hour).
_SUMMARY = """
SELECT
    trace_id,
    toUnixTimestamp64Nano(min(start_time)) AS started,
    toInt64(toUnixTimestamp64Nano(max(end_time)) - started) AS duration,
    max(root_name) AS root,
    sum(span_count) AS spans,
    sum(error_count) AS errors,
    groupUniqArrayArray(agents) AS agent_list,
    groupUniqArrayArray(runs) AS run_list,
    groupUniqArrayArray(statuses) AS status_list,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM traces
"""

# Two steps: rank traces with cheap aggregates only (bounds, error count, whether the filter
# values occur), then summarise the page's traces (their arrays). Each filter adds its clause
# only when it is used (an unused IN subquery would still scan the table); values are bound.
_LIST = (
    _SUMMARY  # noqa: S608 (constant SQL; the values are bound parameters)
    + """WHERE trace_id IN (
    SELECT trace_id
    FROM traces
    WHERE hour >= toStartOfHour(fromUnixTimestamp64Nano({{since:Int64}}))
        AND start_time >= fromUnixTimestamp64Nano({{since:Int64}})
        AND start_time < fromUnixTimestamp64Nano({{until:Int64}})
        AND {owner}
        {run}
    GROUP BY trace_id
    HAVING toUnixTimestamp64Nano(max(end_time)) - toUnixTimestamp64Nano(min(start_time)) >= {{min_duration:Int64}}
        AND (toUnixTimestamp64Nano(min(start_time)), trace_id) < ({{before_start:Int64}}, {{before_trace:String}})
        {having}
    ORDER BY min(start_time) DESC, trace_id DESC
    LIMIT {{limit:UInt32}}
)
GROUP BY trace_id
ORDER BY started DESC, trace_id DESC
"""
)
_EVERY_OWNER = "{owner:String} = ''"
_ONE_OWNER = "trace_id IN (SELECT trace_id FROM traces WHERE has(owners, {owner:String}))"
_RUN = "AND trace_id IN (SELECT trace_id FROM traces WHERE has(runs, {run:String}))"
_AGENT = "AND max(has(agents, {agent:String}))"
_STATUS = "AND max(has(statuses, {status:String}))"
_ERRORS = "AND sum(error_count) > 0"


def _list_sql(selected: TraceFilter, owner: str | None) -> str:
    having = [
        clause
        for used, clause in ((selected.agent, _AGENT), (selected.status, _STATUS), (selected.errors_only, _ERRORS))
        if used
    ]
    return _LIST.format(
        owner=_ONE_OWNER if owner else _EVERY_OWNER, run=_RUN if selected.run else "", having=" ".join(having)
    )


def _summary(row: dict[str, Any]) -> TraceSummary:
    return TraceSummary(
        trace_id=row["trace_id"],
        start_ns=int(row["started"]),
        duration_ns=int(row["duration"]),
        root_name=row["root"],
        span_count=int(row["spans"]),
        error_count=int(row["errors"]),
        agents=sorted(row["agent_list"]),
        runs=sorted(row["run_list"]),
        statuses=sorted(row["status_list"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
    )


# The list looks at the most recent hour, day and week before the whole range: newest first,
# a page is usually complete within the first window, which the table's key reads alone.
WINDOWS_NS = (3600 * 10**9, 86400 * 10**9, 7 * 86400 * 10**9)


# The list looks at the most recent hour, day and week before the whole range: newest first,
# a page is usually complete within the first window, which the table's key reads alone. A
# run's traces are few and found through its id, so they are looked up at once.
WINDOWS_NS = (3600 * 10**9, 86400 * 10**9, 7 * 86400 * 10**9)


def list_traces(selected: TraceFilter, *, owner: str | None) -> list[TraceSummary]:
    """Traces newest first (the first `limit` before the cursor)."""
    before = selected.before or (NEVER, "")
    sql = _list_sql(selected, owner)
    parameters = {
        "since": selected.since_ns,
        "until": selected.until_ns,
        "run": selected.run,
        "agent": selected.agent,
        "status": selected.status,
        "min_duration": int(selected.min_duration_ms * 1e6),
        "before_start": before[0],
        "before_trace": before[1],
        "limit": min(selected.limit, LIST_LIMIT),
    }
    newest = min(selected.until_ns, before[0], time.time_ns())
    for window in () if selected.run else WINDOWS_NS:
        if newest - window <= selected.since_ns:
            break
        found = store.query(sql, {**parameters, "since": newest - window}, owner=owner).dicts()
        if len(found) == parameters["limit"]:
            return [_summary(row) for row in found]
    return [_summary(row) for row in store.query(sql, parameters, owner=owner).dicts()]


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    duration_ns: int
    status_code: str
    status_message: str
    run_id: str
    agent: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    depth: int = 0
    children: list[Span] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6


@dataclass(frozen=True)
class Trace:
    summary: TraceSummary
    spans: list[Span]  # depth-first, each parent before its children, siblings by start


_BOUNDS = (
    _SUMMARY
    + """WHERE trace_id = {trace:String}
GROUP BY trace_id
HAVING {owner:String} = '' OR has(groupUniqArrayArray(owners), {owner:String})
"""
)

_SPANS = """
SELECT
    trace_id, span_id, parent_span_id, name, kind, service,
    toUnixTimestamp64Nano(start_time) AS start_ns, duration_ns, status_code, status_message,
    run_id, agent, attributes, events, links
FROM spans
WHERE trace_id = {trace:String}
    AND start_time >= fromUnixTimestamp64Nano({low:Int64}) AND start_time <= fromUnixTimestamp64Nano({high:Int64})
    AND ({owner:String} = '' OR trace_id IN (SELECT trace_id FROM traces WHERE trace_id = {trace:String}
                                             AND has(owners, {owner:String})))
ORDER BY start_time
LIMIT 10000
"""


def get_trace(trace_id: str, *, owner: str | None) -> Trace:
    """One trace with its spans as a tree; TraceNotFound if there is none (of the owner's)."""
    found = store.query(_BOUNDS, {"trace": trace_id}, owner=owner).dicts()
    if not found:
        raise TraceNotFound()
    summary = _summary(found[0])
    bounds = {"trace": trace_id, "low": summary.start_ns, "high": summary.start_ns + summary.duration_ns}
    rows = store.query(_SPANS, bounds, owner=owner).dicts()
    return Trace(summary, _tree([_span(row) for row in rows]))


def _span(row: dict[str, Any]) -> Span:
    return Span(
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        parent_span_id=row["parent_span_id"],
        name=row["name"],
        kind=row["kind"],
        service=row["service"],
        start_ns=int(row["start_ns"]),
        duration_ns=int(row["duration_ns"]),
        status_code=row["status_code"],
        status_message=row["status_message"],
        run_id=row["run_id"],
        agent=row["agent"],
        attributes=json.loads(row["attributes"] or "{}"),
        events=json.loads(row["events"] or "[]"),
        links=json.loads(row["links"] or "[]"),
    )


def _tree(spans: list[Span]) -> list[Span]:
    """Depth-first order with depths; a span whose parent is not stored is a root."""
    by_id = {span.span_id: span for span in spans}
    roots: list[Span] = []
    for span in spans:  # spans come sorted by start, so children lists are too
        parent = by_id.get(span.parent_span_id)
        (parent.children if parent is not None and parent is not span else roots).append(span)
    ordered: list[Span] = []
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        span, depth = stack.pop()
        ordered.append(Span(**{**span.__dict__, "depth": depth, "children": []}))
        stack.extend((child, depth + 1) for child in reversed(span.children))
    return ordered


def run_traces(run_id: str, *, owner: str | None) -> list[TraceSummary]:
    """The traces a run's work is in (a run paused for approval continues in the decision's trace)."""
    return list_traces(TraceFilter(run=run_id, limit=LIST_LIMIT), owner=owner)


def filter_choices(*, owner: str | None) -> tuple[list[str], list[str]]:
    """The agents and run statuses seen in the runs' spans: the trace list's filter options."""
    sql = """
    SELECT groupUniqArray(toString(agent)) AS agents, groupUniqArray(toString(run_status)) AS statuses
    FROM spans
    WHERE name = {name:String} AND ({owner:String} = '' OR owner_id = {owner:String})
    """
    [row] = store.query(sql, {"name": attr.AGENT_RUN}, owner=owner).rows
    return sorted(a for a in row[0] if a), sorted(s for s in row[1] if s)
