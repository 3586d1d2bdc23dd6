"""SSE time to the first event: a streamed run through the platform against the fake model's own stream.

Both are requests over a new HTTP/1.1 connection (stdlib `http.client`), one at a time,
interleaved. The fake model's streaming endpoint is `POST /v1/chat/completions` with
`"stream": true`; its first event is the first `data:` chunk. The platform's is
`POST /api/v1/agents/bench/runs/` with `"stream": true`: the response head (sent at once,
with an opening SSE comment that is not an event), then the first event (`run.started`,
written by the worker when it claims the run), then the first event made from the model's
output (`tool.call.started`: the bench agent's first model turn is a tool call; the text of
its second streams as `message.delta`), then the end.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

from bench.load import RUNS_PATH, TRANSPORT_ERRORS

MODEL_PATH = "/v1/chat/completions"
MODEL_BODY = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "Hello"}]}
FIRST_MODEL_EVENT = b"event: tool.call.started"
FINAL_EVENT = b"event: run.completed"


@dataclass(frozen=True)
class Sample:
    head_ms: float  # status line and headers
    first_ms: float  # the first line of the first event or chunk (SSE comments and blank lines skipped)
    model_event_ms: float  # platform: the first event made from the model's output (NaN for the model)
    total_ms: float
    sent_at: float  # wall clock (time.time()) when the request was sent
    run_id: str | None  # platform: the streamed run


@dataclass(frozen=True)
class Breakdown:
    """Where the platform's time to first event goes, from the run's own timestamps (medians, ms)."""

    api_ms: float  # request sent -> run row stamped (auth, validation, the insert)
    queue_ms: float  # -> run claimed by a worker (commit, enqueue on commit, broker, pickup, claim)
    claim_ms: float  # -> its first event (`run.started`) stamped, in the claim's transaction
    delivery_ms: float  # -> first event at the client (commit, publish, Redis, the SSE stream)


@dataclass
class TtfbResult:
    model: list[Sample] = field(default_factory=list)
    platform: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    breakdown: Breakdown | None = None


def _post(base_url: str, path: str, body: dict[str, object], headers: dict[str, str], marker: bytes | None) -> Sample:
    """Time one streamed response: head, first event, the first line starting with `marker`, the end."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
    try:
        sent_at, start = time.time(), time.perf_counter()
        connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        response = connection.getresponse()
        head = time.perf_counter()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}: {response.read()[:200]!r}")
        lines = [response.readline()]
        first = marked = math.nan
        while lines[-1]:
            line = lines[-1]
            if math.isnan(first) and not line.startswith((b":", b"\r", b"\n")):
                first = time.perf_counter()
            if marker is not None and math.isnan(marked) and line.startswith(marker):
                marked = time.perf_counter()
            lines.append(response.readline())
        end = time.perf_counter()
    finally:
        connection.close()
    if marker is not None and not any(line.startswith(FINAL_EVENT) for line in lines):
        raise ValueError(f"the stream ended without {FINAL_EVENT.decode()}: {b''.join(lines)[-200:]!r}")
    head_ms, first_ms, marked_ms, total_ms = ((t - start) * 1000 for t in (head, first, marked, end))
    return Sample(head_ms, first_ms, marked_ms, total_ms, sent_at, _run_id(lines) if marker else None)


def _run_id(lines: list[bytes]) -> str | None:
    data = next((line for line in lines if line.startswith(b"data: ")), None)
    return str(json.loads(data[6:])["run_id"]) if data else None


def breakdown(database_url: str, samples: list[Sample]) -> Breakdown:
    """Split the platform's time to first event at the run's stored timestamps (one machine, one clock)."""
    by_run = {s.run_id: s for s in samples if s.run_id}
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.id::text, r.created_at, r.started_at, e.created_at FROM agents_run r "
            "JOIN agents_runevent e ON e.run_id = r.id AND e.seq = 1 WHERE r.id = ANY(%s::uuid[])",
            (list(by_run),),
        ).fetchall()
    parts: list[list[float]] = []
    for run_id, created, started, first_event in rows:
        sample = by_run[run_id]
        marks = [sample.sent_at, created.timestamp(), started.timestamp(), first_event.timestamp()]
        marks.append(sample.sent_at + sample.first_ms / 1000)
        parts.append([(b - a) * 1000 for a, b in itertools.pairwise(marks)])
    return Breakdown(*(statistics.median(p[i] for p in parts) if parts else math.nan for i in range(4)))


def measure_ttfb(
    base_url: str, api_key: str, model_url: str, database_url: str, samples: int, *, warmup: int = 5
) -> TtfbResult:
    platform_headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    run_body: dict[str, object] = {"input": "What is stored under key 42?", "stream": True}
    requests: dict[str, Callable[[], Sample]] = {
        "model": lambda: _post(model_url, MODEL_PATH, MODEL_BODY, {"Content-Type": "application/json"}, None),
        "platform": lambda: _post(base_url, RUNS_PATH, run_body, platform_headers, FIRST_MODEL_EVENT),
    }
    result = TtfbResult()
    for index in range(warmup + samples):
        for name, request in requests.items():
            try:
                sample = request()
            except TRANSPORT_ERRORS as exc:
                result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            if index >= warmup:
                getattr(result, name).append(sample)
    result.breakdown = breakdown(database_url, result.platform)
    return result


def median(samples: list[Sample], value: Callable[[Sample], float]) -> float:
    return statistics.median(value(s) for s in samples) if samples else float("nan")
