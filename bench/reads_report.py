"""The reads section as Markdown: one row per server and C, then what went wrong, by kind."""

from __future__ import annotations

import math

from bench.capacity_report import Machine
from bench.reads import MESSAGES, PROBES, SESSIONS, WARM_UP, LevelResult, ReadsResults
from bench.reads_load import percentile
from bench.streaming_report import num

HEADER = (
    "| Server | C | Reads/s | p50 ms | p99 ms | 503/s | 503 p99 ms | Other errors | Clients unanswered "
    "| Clients never read (fewest possible) | RSS MiB idle / peak | Threads | Server CPU ms/read | Client cores "
    "| After: reads, ready |"
)


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else num(seconds * 1000)


def _row(result: LevelResult) -> str:
    level, watch = result.level, result.watch
    latencies = level.latencies
    other = sum(count for kind, count in level.errors.items() if not kind.startswith("HTTP 503"))
    reads = level.reads_per_second * level.window
    cells = [
        result.server,
        f"{result.clients:,}",
        num(level.reads_per_second),
        _ms(percentile(latencies, 50)),
        _ms(percentile(latencies, 99)),
        num(level.refusals_per_second),
        _ms(percentile(level.refusal_latencies, 99)),
        f"{other:,}",
        f"{level.unanswered_clients:,}",
        f"{level.unread_clients:,} ({level.fewest_unread:,})",
        f"{result.idle_rss_kib / 1024:.0f} / {watch.rss_kib / 1024:.0f}",
        str(watch.threads),
        num(watch.cpu_seconds * 1000 / reads, 2) if reads else "-",
        num(watch.client_cpu_seconds / level.window, 2),
        f"{result.recovery.reads}/{PROBES}, {result.recovery.ready}",
    ]
    return "| " + " | ".join(cells) + " |"


def _errors(results: ReadsResults) -> list[str]:
    lines = []
    for result in results.levels:
        if result.level.errors:
            kinds = ", ".join(f"{kind}: {count:,}" for kind, count in result.level.errors.most_common())
            lines.append(f"- {result.server}, C={result.clients:,}: {kinds}")
    return lines or ["- none"]


def render(results: ReadsResults, where: Machine) -> str:
    config = results.config
    lines = [
        f"## Reads: session history under many concurrent readers ({config.name})",
        "",
        (
            f"{SESSIONS:,} sessions of {MESSAGES} messages on one PostgreSQL; each server first warmed up "
            f"({WARM_UP.clients} readers for {WARM_UP.seconds:g} s, not reported); C closed-loop readers on keep-alive "
            f"connections, each reading a random session's history; {config.warmup:g} s warm-up, {config.window:g} s "
            f"measured; a request unanswered after {config.timeout:g} s counts as a timeout. {where.cores} cores "
            f"({where.cpu}), commit {where.commit}, load average {where.load_before[0]:.2f} before and "
            f"{where.load_after[0]:.2f} after; {results.minutes:.1f} minutes."
        ),
        "",
        HEADER,
        "|" + "---|" * HEADER.count(" | ") + "---|",
        *(_row(result) for result in results.levels),
        "",
        "Every outcome other than a read, by kind (warm-up and drain included):",
        "",
        *_errors(results),
        *([""] + [f"- {note}" for note in results.notes] if results.notes else []),
        "",
    ]
    return "\n".join(lines)
