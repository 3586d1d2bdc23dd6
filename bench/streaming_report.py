"""The streaming benchmark's Markdown: idle WebSockets, event latency, SSE time to the first event."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from bench.idle import ATTEMPTS, IdleResult, Step
from bench.latency import LatencyResult
from bench.streaming import StreamingResults
from bench.ttfb import Breakdown, Sample, TtfbResult, median
from bench.ws import PARALLEL_OPENS

DAPHNE_ALONE_ISSUE_KIB = 38.0  # the issue's figure for Daphne alone on this machine

IDLE_METHOD = (
    "Each connection on its own session (sessions inserted with SQL), authenticated with `Authorization: Bearer`, "
    "counted once `session.ready` arrived. Server: one `daphne` process started by the benchmark "
    "(`daphne agentplatform.asgi:application`, the README's distributed command) on the stack's PostgreSQL and "
    "Redis. *Daphne alone*: another `daphne` serving `bench/echo_asgi.py` (accept and echo; no Django, no "
    f"Channels). Client: one asyncio process (`websockets`, no compression, no client pings), {PARALLEL_OPENS} "
    f"handshakes in flight; a failed handshake is tried again (at most {ATTEMPTS} attempts), as a client would "
    "reconnect. RSS is VmRSS from `/proc/<pid>/status` 2 s after each step; *KiB/conn (from empty)* is the RSS "
    "growth over the warmed-up empty server (50 connections opened and closed) divided by the open connections; "
    "*(this step)* is the growth over the previous step divided by the connections it added."
)
IDLE_HEADER = (
    "| Server | Open connections | Opened in s | Opened/s | RSS MiB | KiB/conn (from empty) | KiB/conn (this step) "
    "| Open files | Failed handshakes | Not opened |"
)
LATENCY_METHOD = (
    "All on one Daphne process like the one above, started afresh for this test. The first watcher of each "
    "session starts its runs with `run` messages, one run at a time per session, *Runs at once* sessions at a time "
    "(each waits for its run's final event). Latency is the watcher's receive time minus the event's `created_at`, "
    "which the worker stamps as it writes the event, just before the insert, commit and publish (one machine, one "
    "clock); over every delivery to every watcher."
)
TTFB_METHOD = (
    "One request at a time, each on a new connection, the two kinds interleaved; medians. *Fake model*: "
    '`POST /v1/chat/completions` with `"stream": true`, straight to the fake model server. *Platform*: '
    '`POST /api/v1/agents/bench/runs/` with `"stream": true` (a new session each run) to `manage.py up`: the '
    "response head comes once the run is stored (with an opening SSE comment, not an event); its first event is "
    "`run.started`, written by the worker when it claims the run; the first event made from the model's output "
    "is `tool.call.started`, after the first model call (the bench agent's first turn is a tool call; the text "
    "of its second streams as `message.delta`)."
)
BREAKDOWN_HEADER = (
    "| Request to run row | Run row to claimed by the worker | Claimed to `run.started` written "
    "| Written to first event at the client |"
)


def num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.1f}"


def _common(errors: Iterable[str]) -> list[str]:
    return [f"- {count} x `{error[:160]}`" for error, count in Counter(errors).most_common(3)]


def _step_row(result: IdleResult, step: Step, previous: Step | None) -> str:
    before = (previous.connections, previous.rss_kib) if previous else (0, result.baseline_kib)
    added = step.connections - before[0]
    marginal = (step.rss_kib - before[1]) / added if added > 0 else math.nan
    rate = step.added / step.seconds if step.seconds else math.nan
    return (
        f"| {result.server} | {step.connections:,} | {step.seconds:.1f} | {num(rate, 0)} | {_mib(step.rss_kib)} "
        f"| {num(result.kib_per_connection(step))} | {num(marginal)} | {step.fds:,} | {len(step.errors)} "
        f"| {step.not_opened} |"
    )


def _idle_table(results: StreamingResults) -> list[str]:
    lines = ["", "### WebSocket: idle connections on one Daphne process", "", IDLE_METHOD, "", IDLE_HEADER]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in (results.platform, results.bare):
        lines.append(f"| {result.server} | 0 | | | {_mib(result.baseline_kib)} | | | {result.baseline_fds:,} | | |")
        for index, step in enumerate(result.steps):
            lines.append(_step_row(result, step, result.steps[index - 1] if index else None))
    return [*lines, "", *_idle_notes(results)]


def _unsubscribed(result: IdleResult) -> str:
    passes = ("after closing them", "after closing the reopened ones")
    after = [
        f"{left:,} left {seconds:.1f} s {when}"
        for (left, seconds), when in zip(result.unsubscribed, passes, strict=False)
    ]
    return f"Redis channels the process subscribed: {_count(result.subscriptions_at_top)} with all open; " + (
        "; ".join(after) or "n/a"
    )


def _idle_notes(results: StreamingResults) -> list[str]:
    ours, bare = results.platform, results.bare
    if not ours.steps or not bare.steps:
        return ["No idle connections were measured."]
    ours_kib, bare_kib = ours.kib_per_connection(ours.steps[-1]), bare.kib_per_connection(bare.steps[-1])
    notes = [
        (
            f"- Held idle {ours.hold_seconds:g} s (across Daphne's 20 s ping): {ours.open_after_hold:,} / "
            f"{ours.held:,} still open on the platform, {bare.open_after_hold:,} / {bare.held:,} on Daphne alone."
        ),
        (
            f"- At {ours.held:,} connections: **{num(ours_kib)} KiB per connection** on the platform, "
            f"{num(bare_kib)} KiB on Daphne alone (the issue quotes about {DAPHNE_ALONE_ISSUE_KIB:.0f} KiB for "
            "Daphne alone): the platform "
            f"adds {num(ours_kib - bare_kib)} KiB per connection ({num(ours_kib / bare_kib, 2)}x)."
        ),
        (
            f"- After closing all: RSS {_mib(ours.closed_kib)} MiB (Python keeps memory it freed), "
            f"{ours.closed_fds:,} open files. {_unsubscribed(ours)}."
        ),
    ]
    if ours.reopened is not None:
        again = ours.reopened
        notes.append(
            f"- Reopened {again.connections:,} at once ({len(again.errors)} failed handshakes, {again.not_opened} not "
            f"opened, {again.seconds:.1f} s): RSS {_mib(again.rss_kib)} MiB, against {_mib(ours.steps[-1].rss_kib)} "
            f"MiB at the top of the first pass and {_mib(ours.closed_kib)} MiB after closing (memory that closed "
            "connections leaked would add to the second pass)."
        )
    passes = [*ours.steps, *bare.steps, *([ours.reopened] if ours.reopened else [])]
    return notes + _common(e for step in passes for e in step.errors)


def _latency_table(result: LatencyResult) -> list[str]:
    per_session = result.watchers // max(result.sessions, 1)
    lines = [
        "",
        f"### WebSocket: event latency with {result.watchers:,} connected watchers",
        "",
        f"{result.watchers:,} watchers on {result.sessions} sessions ({per_session} per session). {LATENCY_METHOD}",
        "",
        "| Runs at once | Runs | Runs/s | Deliveries | p50 ms | p99 ms | max ms | Errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in result.levels:
        rate = len(level.runs) / level.seconds if level.seconds else math.nan
        lines.append(
            f"| {level.concurrency} | {len(level.runs):,} | {num(rate)} | {len(level.latencies_ms):,} | "
            f"{num(level.p50_ms, 2)} | {num(level.p99_ms, 2)} | {num(level.max_ms, 2)} | {len(level.errors)} |"
        )
    c = result.check
    lines += [
        "",
        (
            f"Every event of every run, to every watcher of its session, once and in order: **{c.exact:,} / "
            f"{c.watchers:,} watchers exact**; {c.delivered:,} deliveries of {c.expected:,} owed; lost {c.lost}, "
            f"duplicated {c.duplicated}, unexpected {c.unexpected}, watchers out of order {c.out_of_order}."
        ),
    ]
    return lines + _common([*result.connect_errors, *(e for level in result.levels for e in level.errors)])


def _ttfb_row(name: str, samples: list[Sample]) -> str:
    values = [median(samples, lambda s: s.head_ms), median(samples, lambda s: s.first_ms)]
    values += [median(samples, lambda s: s.model_event_ms), median(samples, lambda s: s.total_ms)]
    return f"| {name} | {len(samples)} | " + " | ".join(num(v, 2) for v in values) + " |"


def _breakdown(parts: Breakdown | None) -> list[str]:
    if parts is None:
        return []
    values = (parts.api_ms, parts.queue_ms, parts.claim_ms, parts.delivery_ms)
    return [
        "",
        (
            "Where the platform's time to first event goes (medians over the same runs; the run's stored "
            "`created_at` and `started_at`, and the first event's `created_at`, against the client's clock):"
        ),
        "",
        BREAKDOWN_HEADER,
        "|---:|---:|---:|---:|",
        "| " + " | ".join(f"{num(v, 2)} ms" for v in values) + " |",
    ]


def ttfb_added_ms(result: TtfbResult) -> float:
    return median(result.platform, lambda s: s.first_ms) - median(result.model, lambda s: s.first_ms)


def _ttfb_table(result: TtfbResult) -> list[str]:
    lines = ["", "### SSE: time to the first event", "", TTFB_METHOD, ""]
    lines += ["| Request | Samples | Headers ms | First event ms | First model event ms | Whole response ms |"]
    lines += ["|---|---:|---:|---:|---:|---:|"]
    lines += [_ttfb_row("Fake model, streamed", result.model), _ttfb_row("Platform, streamed run", result.platform)]
    lines += [
        "",
        (
            f"Added by the platform to the time to the first event: **{num(ttfb_added_ms(result), 2)} ms** (median "
            f"first event, platform minus fake model); errors: {len(result.errors)}."
        ),
    ]
    return lines + _breakdown(result.breakdown) + _common(result.errors)


def render_streaming(results: StreamingResults) -> list[str]:
    return _idle_table(results) + _latency_table(results.latency) + _ttfb_table(results.ttfb)
