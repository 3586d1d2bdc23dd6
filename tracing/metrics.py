"""What the metrics dashboard and `GET /api/v1/metrics/` show, read from the spans.

A run counts once, when it ends, with its final status: the `agent.run` spans that did not
end paused for approval (a paused run's continuation is another span, which does). Its
latency is that span's duration (the wait for a decision is measured by `approval.wait`).
Tokens come from the model-call spans; a provider SDK's own span inside one is not summed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentplatform.sdk import attributes as attr
from tracing import store
from tracing.selectors import ns

HOUR, DAY = 3600, 86400
PAUSED = "awaiting_approval"
FAILED = "failed"

_WHERE = """
    start_time >= fromUnixTimestamp64Nano({since:Int64}) AND start_time < fromUnixTimestamp64Nano({until:Int64})
    AND ({agent:String} = '' OR agent = {agent:String})
    AND ({owner:String} = '' OR owner_id = {owner:String})
"""
_BUCKET = "toUnixTimestamp(toStartOfInterval(toDateTime(start_time), toIntervalSecond({bucket:UInt32})))"
_RUNS = f"name = {{run_span:String}} AND run_status != {{paused:String}} AND {_WHERE}"

# The SQL is built from the constant fragments above; every value is a bound parameter.
QUERIES = {
    "runs": f"""
        SELECT {_BUCKET} AS bucket, agent, run_status AS status, count() AS runs
        FROM spans WHERE {_RUNS} GROUP BY bucket, agent, status ORDER BY bucket, agent, status""",  # noqa: S608  # constant fragments, bound values
    "latency_by_agent": f"""
        SELECT agent, count() AS runs, quantile(0.5)(duration_ns) AS p50, quantile(0.95)(duration_ns) AS p95
        FROM spans WHERE {_RUNS} GROUP BY ROLLUP(agent) ORDER BY agent""",  # noqa: S608  # constant fragments, bound values
    "latency_over_time": f"""
        SELECT {_BUCKET} AS bucket, quantile(0.5)(duration_ns) AS p50, quantile(0.95)(duration_ns) AS p95
        FROM spans WHERE {_RUNS} GROUP BY bucket ORDER BY bucket""",  # noqa: S608  # constant fragments, bound values
    "tokens": f"""
        SELECT agent, model, count() AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
        FROM spans WHERE operation = {{chat:String}} AND {_WHERE}
        GROUP BY agent, model ORDER BY input_tokens + output_tokens DESC""",  # noqa: S608  # constant fragments, bound values
    "tools": f"""
        SELECT permission, outcome, count() AS calls
        FROM spans WHERE name = {{tool_span:String}} AND {_WHERE}
        GROUP BY permission, outcome ORDER BY calls DESC""",  # noqa: S608  # constant fragments, bound values
    "approvals": f"""
        SELECT outcome AS status, count() AS requests, quantile(0.5)(duration_ns) AS p50,
               quantile(0.95)(duration_ns) AS p95, max(duration_ns) AS longest
        FROM spans WHERE name = {{approval_span:String}} AND {_WHERE}
        GROUP BY status ORDER BY requests DESC""",  # noqa: S608  # constant fragments, bound values
}


@dataclass(frozen=True)
class Metrics:
    since: datetime
    until: datetime
    agent: str
    bucket_seconds: int
    runs: list[dict[str, Any]]  # {bucket, agent, status, runs}
    latency_by_agent: list[dict[str, Any]]  # {agent ("" for all), runs, p50_ms, p95_ms}
    latency_over_time: list[dict[str, Any]]  # {bucket, p50_ms, p95_ms}
    tokens: list[dict[str, Any]]  # {agent, model, calls, input_tokens, output_tokens}
    tools: list[dict[str, Any]]  # {permission, outcome, calls}
    approvals: list[dict[str, Any]]  # {status, requests, p50_ms, p95_ms, longest_ms}
    errors_over_time: list[dict[str, Any]]  # {bucket, runs, failed, error_rate}

    @property
    def total_runs(self) -> int:
        return sum(row["runs"] for row in self.runs)

    @property
    def failed_runs(self) -> int:
        return sum(row["runs"] for row in self.runs if row["status"] == FAILED)

    @property
    def error_rate(self) -> float:
        return self.failed_runs / self.total_runs if self.total_runs else 0.0

    @property
    def error_rate_percent(self) -> float:
        return 100 * self.error_rate


def _ms(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    """Nanosecond durations as milliseconds (None when there was nothing to measure)."""
    for row in rows:
        for name in names:
            value = row.pop(name)
            row[f"{name}_ms"] = None if math.isnan(value) else round(float(value) / 1e6, 3)  # NaN: no rows
    return rows


def _errors_over_time(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    buckets: dict[int, list[int]] = {}
    for row in runs:
        total = buckets.setdefault(row["bucket"], [0, 0])
        total[0] += row["runs"]
        total[1] += row["runs"] if row["status"] == FAILED else 0
    return [
        {"bucket": bucket, "runs": runs, "failed": failed, "error_rate": failed / runs}
        for bucket, (runs, failed) in sorted(buckets.items())
    ]


def metrics(since: datetime, until: datetime, agent: str, *, owner: str | None) -> Metrics:
    bucket = HOUR if (until - since).total_seconds() <= 2 * DAY else DAY
    parameters = {
        "since": ns(since),
        "until": ns(until),
        "agent": agent,
        "bucket": bucket,
        "run_span": attr.AGENT_RUN,
        "paused": PAUSED,
        "chat": attr.OPERATION_CHAT,
        "tool_span": attr.TOOL_CALL,
        "approval_span": attr.APPROVAL_WAIT,
    }
    found = {name: store.query(sql, parameters, owner=owner).dicts() for name, sql in QUERIES.items()}
    return Metrics(
        since=since,
        until=until,
        agent=agent,
        bucket_seconds=bucket,
        runs=found["runs"],
        latency_by_agent=_ms(found["latency_by_agent"], "p50", "p95"),
        latency_over_time=_ms(found["latency_over_time"], "p50", "p95"),
        tokens=found["tokens"],
        tools=found["tools"],
        approvals=_ms(found["approvals"], "p50", "p95", "longest"),
        errors_over_time=_errors_over_time(found["runs"]),
    )
