"""The span store's side of the tracing benchmark, run in subprocesses with Django set up
(`python -m bench.spans COMMAND ...`, started by bench/tracing.py); each prints one JSON line.

- `ingest-direct N BATCH`: N spans through our exporter into the chDB store this process opens.
- `ingest-route N BATCH`: N spans through our exporter onto the Redis route; the span sink
  (another process) inserts them; done when a count through the route says N.
- `generate N`: N synthetic spans (7-span runs over the last 7 days) inserted with SQL.
- `queries REPEAT local|route`: the trace list, detail and metrics, timed, on that store.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import django

django.setup()

from opentelemetry.sdk.resources import Resource  # noqa: E402  # after django.setup()
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from agentplatform.sdk import attributes as attr  # noqa: E402
from tracing import migrate, selectors, store  # noqa: E402
from tracing.metrics import metrics  # noqa: E402
from tracing.processor import StoreSpanProcessor  # noqa: E402

COUNT = "SELECT count() FROM spans WHERE {owner:String} = ''"
AGENTS = ("support", "billing", "research", "sales", "ops")
ROUTE = "api/v1/agents/<slug:agent>/runs/"


class _Collect(SpanProcessor):
    def __init__(self, into: list[ReadableSpan]) -> None:
        self.into = into

    def on_end(self, span: ReadableSpan) -> None:
        self.into.append(span)


def make_spans(count: int) -> list[ReadableSpan]:
    """Runs as the platform traces them: request, task, queue wait, run, 2 model calls, 1 tool call."""
    spans: list[ReadableSpan] = []
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(_Collect(spans))
    tracer = provider.get_tracer("bench")
    n = 0
    while len(spans) < count:
        n += 1
        scope: dict[str, Any] = {
            attr.RUN_ID: f"00000000-0000-4000-8000-{n:012d}",
            attr.SESSION_ID: f"00000000-0000-4000-9000-{n:012d}",
            attr.AGENT_NAME: AGENTS[n % len(AGENTS)],
            attr.OWNER_ID: str(n % 50 + 1),
        }
        chat: dict[str, Any] = {
            **scope,
            attr.GEN_AI_OPERATION: "chat",
            attr.GEN_AI_PROVIDER: "openai",
            attr.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            attr.GEN_AI_INPUT_TOKENS: 320,
            attr.GEN_AI_OUTPUT_TOKENS: 41,
            attr.GEN_AI_FINISH_REASONS: ("stop",),
        }
        request: dict[str, Any] = {"http.method": "POST", "http.route": ROUTE, "http.status_code": 201}
        with (
            tracer.start_as_current_span(f"POST {ROUTE}", kind=SpanKind.SERVER, attributes=request),
            tracer.start_as_current_span("celery.task agents.execute_run", kind=SpanKind.CONSUMER),
        ):
            tracer.start_span(attr.QUEUE_WAIT).end()
            with tracer.start_as_current_span(attr.AGENT_RUN, attributes={**scope, attr.RUN_STATUS: "completed"}):
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat):
                    pass
                tool: dict[str, Any] = {
                    attr.GEN_AI_TOOL_NAME: "lookup",
                    attr.TOOL_PERMISSION: "allow",
                    attr.TOOL_OUTCOME: "ok",
                }
                with tracer.start_as_current_span(attr.TOOL_CALL, attributes={**scope, **tool}):
                    pass
                with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=chat):
                    pass
    return spans[:count]


def _count() -> int:
    return int(store.query(COUNT, {}, owner=None).rows[0][0])


def ingest(count: int, batch: int, *, wait_for: Callable[[], int]) -> dict[str, Any]:
    spans = make_spans(count)
    before = wait_for()
    processor = StoreSpanProcessor(store.insert_spans, max_buffer=count + 1, batch=batch, interval=0.05)
    cpu = time.process_time()
    started = time.perf_counter()
    for span in spans:
        processor.on_end(span)
    flushed = processor.force_flush(600_000)
    deadline = time.monotonic() + 600
    while wait_for() - before < count and time.monotonic() < deadline:
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    stored = wait_for() - before
    return {
        "spans": count,
        "stored": stored,
        "batch": batch,
        "seconds": seconds,
        "per_second": stored / seconds,
        "cpu_seconds": time.process_time() - cpu,
        "flushed": flushed,
        "dropped": processor.stats.dropped,
    }


_GENERATE = """
INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, start_time, end_time, duration_ns,
                   status_code, status_message, attributes, events, links, run_id, session_id, agent, owner_id,
                   run_status, operation, provider, model, tool, permission, outcome, input_tokens, output_tokens)
SELECT
    lower(hex(sipHash128(t))) AS trace_id,
    lower(hex(sipHash64(t, p))) AS span_id,
    if(p = 0, '', lower(hex(sipHash64(t, [0, 0, 1, 1, 3, 3, 3][p + 1])))) AS parent_span_id,
    ['POST api/v1/agents/<slug:agent>/runs/', 'celery.task agents.execute_run', 'queue.wait', 'agent.run',
     'chat gpt-4o-mini', 'tool.call', 'chat gpt-4o-mini'][p + 1] AS name,
    ['server', 'consumer', 'internal', 'internal', 'client', 'internal', 'client'][p + 1] AS kind,
    'agentplatform' AS service,
    fromUnixTimestamp64Nano(toInt64(trace_start + [0, 1, 1, 5, 6, 300, 310][p + 1] * 1000000 * scale)) AS start_time,
    fromUnixTimestamp64Nano(toInt64(trace_start + ([0, 1, 1, 5, 6, 300, 310][p + 1]
        + [800, 790, 4, 780, 290, 3, 460][p + 1]) * 1000000 * scale)) AS end_time,
    toUInt64([800, 790, 4, 780, 290, 3, 460][p + 1] * 1000000 * scale) AS duration_ns,
    if(failed AND p IN (0, 3), 'error', 'unset') AS status_code,
    if(failed AND p = 3, 'openai:gpt-4o-mini: HTTP 500', '') AS status_message,
    toJSONString(map('agentplatform.run.id', run, 'agentplatform.agent.name', agent_name,
                     'agentplatform.owner.id', owner, 'gen_ai.request.model', 'gpt-4o-mini',
                     'http.route', 'api/v1/agents/<slug:agent>/runs/', 'padding', repeat('x', 160))) AS attributes,
    '[]' AS events, '[]' AS links,
    if(p >= 3, run, '') AS run_id,
    if(p >= 3, toString(reinterpretAsUUID(sipHash128('session', t))), '') AS session_id,
    if(p >= 3, agent_name, '') AS agent,
    if(p >= 3, owner, '') AS owner_id,
    if(p = 3, if(failed, 'failed', 'completed'), '') AS run_status,
    ['', '', '', 'invoke_agent', 'chat', 'execute_tool', 'chat'][p + 1] AS operation,
    if(p IN (4, 6), 'openai', '') AS provider,
    if(p IN (4, 6), 'gpt-4o-mini', '') AS model,
    if(p = 5, 'lookup', '') AS tool,
    if(p = 5, 'allow', '') AS permission,
    if(p = 5, 'ok', '') AS outcome,
    if(p IN (4, 6), 300 + t % 200, 0) AS input_tokens,
    if(p IN (4, 6), 40 + t % 50, 0) AS output_tokens
FROM (
    SELECT number DIV 7 AS t, number % 7 AS p, t % 20 = 0 AS failed,
           toUnixTimestamp64Nano(now64(9)) - intDiv(t * 604800000000000, {traces:UInt64}) AS trace_start,
           1 + (sipHash64(t) % 100) / 50 AS scale,
           toString(reinterpretAsUUID(sipHash128('run', t))) AS run,
           ['support', 'billing', 'research', 'sales', 'ops'][t % 5 + 1] AS agent_name,
           toString(t % 50 + 1) AS owner
    FROM numbers({spans:UInt64})
)
"""


def generate(count: int) -> dict[str, Any]:
    started = time.perf_counter()
    store.command(_GENERATE, {"spans": count, "traces": max(count // 7, 1)})
    traces = store.run_read("SELECT uniqExact(trace_id) FROM traces", {}).rows[0][0]
    return {"spans": _count(), "traces": int(traces), "seconds": time.perf_counter() - started}


def _timed(query: Callable[[], Any], repeat: int) -> dict[str, Any]:
    query()  # warm-up
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = query()
        times.append((time.perf_counter() - started) * 1000)
        size = len(found) if isinstance(found, list) else len(getattr(found, "spans", [])) or 1
    ordered = sorted(times)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median_ms": statistics.median(times), "p95_ms": p95, "rows": size}


def queries(repeat: int) -> dict[str, Any]:
    trace_id = _trace_of(12345)
    run_id = selectors.get_trace(trace_id, owner=None).summary.runs[0]
    owner = str(12345 % 50 + 1)
    now = time.time()
    since_day = selectors.from_ns(int((now - 86400) * 1e9))
    since_week = selectors.from_ns(int((now - 7 * 86400) * 1e9))
    until = selectors.from_ns(int(now * 1e9))
    first = selectors.list_traces(selectors.TraceFilter(), owner=None)
    cases: dict[str, Callable[[], Any]] = {
        "list: newest 50 (staff)": lambda: selectors.list_traces(selectors.TraceFilter(), owner=None),
        "list: newest 50 of one owner (API)": lambda: selectors.list_traces(selectors.TraceFilter(), owner=owner),
        "list: agent + status=failed": lambda: selectors.list_traces(
            selectors.TraceFilter(agent="support", status="failed"), owner=None
        ),
        "list: a filter nothing matches (every window)": lambda: selectors.list_traces(
            selectors.TraceFilter(agent="billing", status="failed"), owner=None
        ),
        "list: errors only, >= 1 s": lambda: selectors.list_traces(
            selectors.TraceFilter(errors_only=True, min_duration_ms=1000), owner=None
        ),
        "list: last hour": lambda: selectors.list_traces(
            selectors.TraceFilter(since_ns=int((now - 3600) * 1e9)), owner=None
        ),
        "list: next page (cursor)": lambda: selectors.list_traces(
            selectors.TraceFilter(before=first[-1].cursor), owner=None
        ),
        "list: a run's traces": lambda: selectors.run_traces(run_id, owner=None),
        "detail: one trace (staff)": lambda: selectors.get_trace(trace_id, owner=None),
        "detail: one trace (its owner, API)": lambda: selectors.get_trace(trace_id, owner=owner),
        "metrics: 24 h, all agents (staff)": lambda: metrics(since_day, until, "", owner=None).runs,
        "metrics: 7 days, one agent (owner)": lambda: metrics(since_week, until, AGENTS[12345 % 5], owner=owner).runs,
    }
    return {"queries": {name: _timed(query, repeat) for name, query in cases.items()}, "spans": _count()}


def _trace_of(t: int) -> str:
    sql = "SELECT lower(hex(sipHash128(toUInt64({t:UInt64})))) AS trace_id WHERE {owner:String} = ''"
    return str(store.query(sql, {"t": t}, owner=None).rows[0][0])


def main(argv: list[str]) -> None:
    command, *args = argv
    if command in ("ingest-direct", "generate") or args[-1:] == ["local"]:
        store.open_embedded()
        migrate.apply()
    if command.startswith("ingest-"):
        result = ingest(int(args[0]), int(args[1]), wait_for=_count)
    elif command == "generate":
        result = generate(int(args[0]))
    else:
        result = queries(int(args[0]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
