"""The metrics dashboard's charts, from `metrics.Metrics`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.safestring import SafeString

from tracing import charts
from tracing.metrics import DAY, Metrics


def _labels(metrics: Metrics) -> tuple[list[int], list[str]]:
    """Every bucket of the window (empty ones too), and how each is shown."""
    step = metrics.bucket_seconds
    first = int(metrics.since.timestamp()) // step * step
    buckets = list(range(first, int(metrics.until.timestamp()), step))
    shape = "%m-%d" if step >= DAY else "%m-%d %H:00"
    return buckets, [datetime.fromtimestamp(b, tz=UTC).strftime(shape) for b in buckets]


def _per_bucket(buckets: list[int], rows: list[dict[str, Any]], key: str, value: str) -> dict[str, list[float]]:
    index = {bucket: i for i, bucket in enumerate(buckets)}
    series: dict[str, list[float]] = {}
    for row in rows:
        if row["bucket"] in index:
            series.setdefault(str(row[key]), [0.0] * len(buckets))[index[row["bucket"]]] += float(row[value])
    return series


def _over_time(buckets: list[int], rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[float | None]]:
    found = {row["bucket"]: row for row in rows}
    return {name: [found[b][name] if b in found else None for b in buckets] for name in names}


def _tokens(row: dict[str, Any]) -> float:
    return float(row["input_tokens"] + row["output_tokens"])


def charts_for(metrics: Metrics) -> dict[str, SafeString]:
    buckets, labels = _labels(metrics)
    per = "day" if metrics.bucket_seconds >= DAY else "hour"
    latency = _over_time(buckets, metrics.latency_over_time, ("p50_ms", "p95_ms"))
    error_rate = _over_time(
        buckets,
        [{**row, "error rate %": 100 * row["error_rate"]} for row in metrics.errors_over_time],
        ("error rate %",),
    )
    return {
        "runs_by_status": charts.stacked_bars(
            labels, _per_bucket(buckets, metrics.runs, "status", "runs"), f"runs/{per}"
        ),
        "runs_by_agent": charts.stacked_bars(
            labels, _per_bucket(buckets, metrics.runs, "agent", "runs"), f"runs/{per}"
        ),
        "latency": charts.lines(labels, {"p50": latency["p50_ms"], "p95": latency["p95_ms"]}, "run latency, ms"),
        "error_rate": charts.lines(labels, error_rate, "failed runs, % of runs"),
        "tokens": charts.hbars(
            [(f"{row['agent'] or '(no agent)'} · {row['model']}", _tokens(row)) for row in metrics.tokens],
            "tokens (input + output)",
        ),
        "tools": charts.hbars(
            [(f"{row['permission'] or '?'} → {row['outcome'] or '?'}", row["calls"]) for row in metrics.tools],
            "tool calls by permission → outcome",
        ),
        "approvals": charts.hbars(
            [
                (f"{row['status']} (p95)", row["p95_ms"] / 1000)
                for row in metrics.approvals
                if row["p95_ms"] is not None
            ],
            "approval wait, seconds",
        ),
    }
