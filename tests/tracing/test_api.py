"""GET /api/v1/traces/, /traces/{id}/ and /metrics/: the caller's own runs only, filters,
pagination, and a 400 with a code for bad input."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.fakes.llm_server import Call, Error, Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FAILING = [Error(500, "the model is on fire", headers={"retry-after-ms": "1"})] * 3


def _run(api: Any, llm: Any, *replies: Any, agent: str = "oai") -> dict[str, Any]:
    llm.enqueue(*replies)
    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "2+3?"})
    assert status == 201, run
    return run


@pytest.fixture
def runs(tracing_on, api, make_api, llm):
    """Alice: a completed run with a tool call and a failed one; Bob: a completed one."""
    bob = make_api("bob")
    completed = _run(api, llm, ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))
    failed = _run(api, llm, *FAILING)
    bobs = _run(bob, llm, Text("hello"))
    traces = {name: tracing_on.trace_of(run["id"], {"agent.run"}) for name, run in
              (("completed", completed), ("failed", failed), ("bobs", bobs))}  # fmt: skip
    return {"alice": api, "bob": bob, "runs": (completed, failed, bobs), "traces": traces}


def test_a_caller_lists_only_the_traces_of_its_own_runs_newest_first(runs):
    completed, failed, _ = runs["runs"]

    status, page = runs["alice"].get("/api/v1/traces/")

    assert status == 200
    assert [row["runs"] for row in page["results"]] == [[failed["id"]], [completed["id"]]]
    assert page["next"] is None
    first = page["results"][1]
    assert first["agents"] == ["oai"]
    assert first["statuses"] == ["completed"]
    assert first["root_name"] == "POST api/v1/agents/<slug:agent>/runs/"
    assert (first["input_tokens"], first["output_tokens"]) == (20, 10)


def test_another_owners_trace_is_not_found(runs):
    bobs = runs["traces"]["bobs"].summary.trace_id

    status, body = runs["alice"].get(f"/api/v1/traces/{bobs}/")
    assert (status, body["error"]["code"]) == (404, "trace_not_found")
    status, body = runs["bob"].get(f"/api/v1/traces/{bobs}/")
    assert status == 200
    assert [span["name"] for span in body["spans"] if span["depth"] == 0] == ["POST api/v1/agents/<slug:agent>/runs/"]


def test_a_trace_comes_with_its_spans_as_a_tree(runs):
    trace = runs["traces"]["completed"]

    status, body = runs["alice"].get(f"/api/v1/traces/{trace.summary.trace_id}/")

    assert status == 200
    spans = {span["name"]: span for span in body["spans"]}
    assert spans["agent.run"]["parent_span_id"] == spans["celery.task agents.execute_run"]["span_id"]
    assert spans["tool.call"]["parent_span_id"] == spans["agent.run"]["span_id"]
    assert spans["tool.call"]["attributes"]["gen_ai.tool.name"] == "add"
    assert [span["depth"] for span in body["spans"]][:3] == [0, 1, 2]


FILTERS = {
    "status=failed": ["failed"],
    "status=completed": ["completed"],
    "errors=true": ["failed"],
    "agent=oai": ["failed", "completed"],
    "agent=claude": [],
    "min_duration_ms=3600000": [],
    "from=2000-01-01T00:00:00Z&to=2000-01-02": [],
}


def test_filters(runs):
    found = {query: runs["alice"].get(f"/api/v1/traces/?{query}") for query in FILTERS}

    assert {query: status for query, (status, _) in found.items()} == dict.fromkeys(FILTERS, 200)
    assert {query: [row["statuses"][0] for row in page["results"]] for query, (_, page) in found.items()} == FILTERS


def test_a_runs_trace_and_pages_of_traces(runs):
    completed, failed, bobs = runs["runs"]
    alice = runs["alice"]

    _, by_run = alice.get(f"/api/v1/traces/?run={completed['id']}")
    _, not_mine = alice.get(f"/api/v1/traces/?run={bobs['id']}")
    _, first = alice.get("/api/v1/traces/?limit=1")
    _, second = alice.get(first["next"].removeprefix("http://testserver"))

    assert [row["trace_id"] for row in by_run["results"]] == [runs["traces"]["completed"].summary.trace_id]
    assert not_mine["results"] == []
    assert [row["runs"] for row in first["results"] + second["results"]] == [[failed["id"]], [completed["id"]]]


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/traces/?from=yesterday", "from"),
        ("/api/v1/traces/?from=2026-01-02&to=2026-01-01", "to"),
        ("/api/v1/traces/?limit=0", "limit"),
        ("/api/v1/traces/?limit=201", "limit"),
        ("/api/v1/traces/?run=42", "run"),
        ("/api/v1/traces/?errors=maybe", "errors"),
        ("/api/v1/traces/?min_duration_ms=-1", "min_duration_ms"),
        ("/api/v1/traces/?agent=no%20spaces", "agent"),
        ("/api/v1/metrics/?from=2026-13-01", "from"),
        ("/api/v1/metrics/?from=2020-01-01&to=2026-01-01", "from"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(tracing_on, api, path, param):
    status, body = api.get(path)

    assert status == 400
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["details"] == {"param": param}


@pytest.mark.parametrize("cursor", ["not-a-cursor", base64.urlsafe_b64encode(b"9" * 30 + b":" + b"a" * 32).decode()])
def test_a_crafted_cursor_is_400(tracing_on, api, cursor):
    status, body = api.get(f"/api/v1/traces/?cursor={cursor}")

    assert (status, body["error"]["code"], body["error"]["details"]) == (400, "invalid_cursor", {"param": "cursor"})


def test_a_trace_id_that_is_not_one_is_404(tracing_on, api):
    status, body = api.get("/api/v1/traces/not-a-trace-id/")

    assert (status, body["error"]["code"]) == (404, "not_found")


def test_without_a_key_there_are_no_traces(tracing_on, db):
    from tests.conftest import Api

    assert Api(None).get("/api/v1/traces/")[0] == 401
    assert Api(None).get("/api/v1/metrics/")[0] == 401


def test_metrics_of_the_callers_runs(runs):
    status, found = runs["alice"].get("/api/v1/metrics/")

    assert status == 200
    assert (found["total_runs"], found["failed_runs"], found["error_rate"]) == (2, 1, 0.5)
    assert found["bucket_seconds"] == 3600
    assert sorted((row["status"], row["runs"]) for row in found["runs"]) == [("completed", 1), ("failed", 1)]
    [everyone, oai] = found["latency_by_agent"]
    assert (everyone["agent"], everyone["runs"], oai["agent"], oai["runs"]) == ("", 2, "oai", 2)
    assert everyone["p50_ms"] > 0
    # the failed run's model call counts as a call (it failed after its retries), with no tokens
    assert found["tokens"] == [
        {"agent": "oai", "model": "gpt-test", "calls": 3, "input_tokens": 20, "output_tokens": 10}
    ]
    assert found["tools"] == [{"permission": "allow", "outcome": "ok", "calls": 1}]
    assert found["approvals"] == []
    _, bobs = runs["bob"].get("/api/v1/metrics/?agent=oai")
    assert (bobs["total_runs"], bobs["failed_runs"]) == (1, 0)
