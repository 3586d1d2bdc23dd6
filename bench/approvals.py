"""Approvals: the decision's round trip, and the admin inbox at 10 to 10,000 pending requests.

Alone: `cd /work/main && .venv/bin/python bench/approvals.py [--quick]` (starts its own stack,
like bench/run.py); bench/run.py runs it after its own measurements.

Round trip: a run of `bench-approve` pauses on its CONFIRM call; a client follows the run's
events (SSE), then POSTs `/api/v1/approvals/{id}/approve` with edited arguments and stops the
clock when `run.completed` arrives: the decision recorded, the run resumed on a worker, the
tool executed with the edited arguments, the model's answer stored, the event delivered.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inbox import InboxResults, measure_inbox, render_inbox
from bench.load import Client, percentile
from bench.report import environment
from bench.stack import PYTHON, ROOT, Stack, log, publish, running_stack

AGENT_RUNS = "/api/v1/agents/bench-approve/runs/"
EDITED = {"to": "ops@example.com"}
TARGET_P50_MS = 100.0
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "approvals.md"
SAMPLES = {"full": (100, 100), "quick": (20, 20)}  # (round trips, requests per inbox page and size)


class EventStream:
    """One run's events over SSE (`GET /api/v1/runs/{id}/events/`), read as they arrive."""

    def __init__(self, base_url: str, api_key: str, run_id: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
        self.connection.request("GET", f"/api/v1/runs/{run_id}/events/?after=0", headers=headers)
        self.response = self.connection.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"events: HTTP {self.response.status}")

    def until(self, event_type: str) -> list[dict[str, Any]]:
        """Events up to and including the first of `event_type` (skipping keep-alive comments)."""
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != event_type:
            line = self.response.readline()
            if not line:
                raise RuntimeError(f"the stream ended before {event_type}: {[e['type'] for e in seen]}")
            if line.startswith(b"data: "):
                seen.append(json.loads(line[6:]))
        return seen

    def close(self) -> None:
        self.connection.close()


@dataclass
class RoundTrips:
    approve_ms: list[float] = field(default_factory=list)  # the approve request alone
    round_trip_ms: list[float] = field(default_factory=list)  # approve sent -> run.completed received
    errors: list[str] = field(default_factory=list)


def _paused_run(client: Client) -> str:
    status, run = client.request("POST", AGENT_RUNS, {"input": "Send the weekly report."})
    if status != 202 or run.get("status") != "awaiting_approval":
        raise RuntimeError(f"expected a paused run, got HTTP {status}: {json.dumps(run)[:200]}")
    return str(run["id"])


def _round_trip(client: Client, base_url: str, api_key: str, result: RoundTrips) -> None:
    stream = EventStream(base_url, api_key, _paused_run(client))
    try:
        [approval_id] = stream.until("run.awaiting_approval")[-1]["data"]["approval_ids"]
        start = time.perf_counter()
        status, body = client.request("POST", f"/api/v1/approvals/{approval_id}/approve", {"arguments": EDITED})
        approved = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"approve: HTTP {status}: {json.dumps(body)[:200]}")
        after = stream.until("run.completed")
        done = time.perf_counter()
    finally:
        stream.close()
    results = [e["data"].get("result") for e in after if e["type"] == "tool.call.completed"]
    if results != [f"report sent to {EDITED['to']}"]:
        raise RuntimeError(f"the tool did not run with the approved arguments: {results}")
    result.approve_ms.append((approved - start) * 1000)
    result.round_trip_ms.append((done - start) * 1000)


def measure_round_trips(base_url: str, api_key: str, samples: int, warmup: int = 5) -> RoundTrips:
    """One decision at a time (a reviewer's pace is not a load test)."""
    client, result, scratch = Client(base_url, api_key), RoundTrips(), RoundTrips()
    try:
        for index in range(warmup + samples):
            try:
                _round_trip(client, base_url, api_key, scratch if index < warmup else result)
            except (RuntimeError, OSError, http.client.HTTPException, ValueError) as exc:
                (scratch if index < warmup else result).errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
    return result


def create_decider_key(env: dict[str, str]) -> str:
    """A key of the bench user with the right to decide on its own runs."""
    argv = [PYTHON, "manage.py", "create_api_key", "--user", "bench", "--name", "approvals"]
    done = subprocess.run(  # our own command
        [*argv, "--scopes", "approvals:decide"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@dataclass
class ApprovalResults:
    round_trips: RoundTrips
    inbox: InboxResults


def measure(stack: Stack, samples: int, page_samples: int) -> ApprovalResults:
    api_key = create_decider_key(stack.env)
    log(f"approval round trips: {samples}, one at a time")
    round_trips = measure_round_trips(stack.base_url, api_key, samples)
    log(f"  p50 {statistics.median(round_trips.round_trip_ms or [float('nan')]):.1f} ms")
    log(f"admin inbox at 10, 100 and 10,000 pending requests: {page_samples} per page and size")
    inbox = measure_inbox(stack, api_key, page_samples)
    return ApprovalResults(round_trips, inbox)


def _ms(values: list[float], q: float) -> str:
    return "n/a" if not values else f"{percentile(values, q):,.1f}"


def render(results: ApprovalResults) -> str:
    trips = results.round_trips
    p50 = percentile(trips.round_trip_ms, 50) if trips.round_trip_ms else float("nan")
    verdict = "met" if p50 < TARGET_P50_MS else "NOT met"
    count = len(trips.round_trip_ms) + len(trips.errors)
    lines = [
        "",
        "### Approvals: the decision's round trip",
        "",
        (
            "`POST /api/v1/approvals/{id}/approve` (with edited arguments) until the run's `run.completed` event "
            "arrives on its SSE stream: the decision, the run resumed on a worker, the tool executed with the "
            "edited arguments, one model call (instant fake), the run completed. One decision at a time."
        ),
        "",
        "| Decisions | approve request p50 ms | p99 ms | decision → run completed p50 ms | p99 ms | Errors |",
        "|---:|---:|---:|---:|---:|---:|",
        (
            f"| {count} | {_ms(trips.approve_ms, 50)} | {_ms(trips.approve_ms, 99)} "
            f"| {_ms(trips.round_trip_ms, 50)} | {_ms(trips.round_trip_ms, 99)} | {len(trips.errors)} / {count} |"
        ),
        "",
        f"Round trip p50 **{p50:.1f} ms** (target < {TARGET_P50_MS:.0f} ms: {verdict}).",
    ]
    if trips.errors:
        lines += ["", "Errors:", "", *(f"- `{error[:200]}`" for error in sorted(set(trips.errors))[:5])]
    return "\n".join([*lines, *render_inbox(results.inbox)]) + "\n"


def _header(stack: Stack, load_before: tuple[float, float, float], started: float) -> str:
    env = environment(stack.database_url, load_before, started)
    return "\n".join(
        [
            f"## agentplatform approvals benchmark ({env.when})",
            "",
            f"- Machine: {env.cores} cores (nproc), {env.cpu}, {env.system}",
            (
                f"- Load average 1/5/15 min: before {' / '.join(f'{v:.2f}' for v in env.load_before)}, "
                f"after {' / '.join(f'{v:.2f}' for v in env.load_after)}"
            ),
            f"- Code: commit {env.commit}",
            f"- Python {env.python}, Django {env.django}, Daphne {env.daphne}, PostgreSQL {env.postgres}",
            (
                "- One machine: `manage.py up` (one Daphne process per core, embedded Redis, one Celery worker), "
                "PostgreSQL, the fake model server and the client share the cores."
            ),
            f"- The benchmark took {env.minutes:.1f} min.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke test)")
    samples, page_samples = SAMPLES["quick" if parser.parse_args(argv).quick else "full"]

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    load_before, started = os.getloadavg(), time.monotonic()
    try:
        with running_stack() as stack:
            results = measure(stack, samples, page_samples)
            markdown = _header(stack, load_before, started) + "\n" + render(results)
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    publish(markdown, RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
