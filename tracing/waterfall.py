"""A trace as a waterfall: one row per span, nested by depth, its bar placed on the trace's time axis."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tracing.selectors import Span, Trace, from_ns

MIN_WIDTH = 0.3  # percent: a span too short to see still gets a sliver
TICKS = 5


@dataclass(frozen=True)
class Bar:
    span: Span
    left: float  # percent of the axis
    width: float  # percent of the axis
    offset_ms: float  # from the trace's start
    run_url: str
    attributes: list[tuple[str, str]]
    events: list[dict[str, Any]]

    @property
    def indent(self) -> int:
        return self.span.depth * 14

    @property
    def error(self) -> bool:
        return self.span.status_code == "error"


@dataclass(frozen=True)
class Waterfall:
    bars: list[Bar]
    total_ms: float
    ticks: list[tuple[float, str]]  # (percent, label)


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _events(span: Span, start_ns: int) -> list[dict[str, Any]]:
    return [
        {
            "name": event.get("name", ""),
            "at_ms": round((int(event.get("time_ns", start_ns)) - start_ns) / 1e6, 3),
            "attributes": sorted((k, _shown(v)) for k, v in (event.get("attributes") or {}).items()),
        }
        for event in span.events
    ]


def waterfall(trace: Trace, run_url: Callable[[str], str]) -> Waterfall:
    if not trace.spans:
        return Waterfall([], 0.0, [])
    start = min(span.start_ns for span in trace.spans)  # an approval wait may start before the root
    end = max(span.end_ns for span in trace.spans)
    total = max(end - start, 1)
    bars = [
        Bar(
            span=span,
            left=min(100 * (span.start_ns - start) / total, 100 - MIN_WIDTH),
            width=max(100 * span.duration_ns / total, MIN_WIDTH),
            offset_ms=(span.start_ns - start) / 1e6,
            run_url=run_url(span.run_id),
            attributes=sorted((key, _shown(value)) for key, value in span.attributes.items()),
            events=_events(span, start),
        )
        for span in trace.spans
    ]
    ticks = [(100 * i / (TICKS - 1), f"{total / 1e6 * i / (TICKS - 1):,.1f} ms") for i in range(TICKS)]
    return Waterfall(bars, total / 1e6, ticks)


def started(trace: Trace) -> str:
    return from_ns(trace.summary.start_ns).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
