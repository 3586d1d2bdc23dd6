"""Hot paths run a fixed number of queries, whatever the session's length."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.fakes.llm_server import Call, Text, ToolCalls


def _queries(action) -> int:
    """Statements run, not counting the savepoints the test's own transaction adds."""
    with CaptureQueriesContext(connection) as captured:
        action()
    return sum(1 for query in captured if "SAVEPOINT" not in query["sql"])


def _grow(api, llm, session_id: str, runs: int) -> None:
    for _ in range(runs):
        llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("3"))
        api.post("/api/v1/agents/oai/runs/", {"input": "1+2", "session_id": session_id})


@pytest.mark.django_db
def test_a_run_with_a_tool_call_costs_the_same_queries_in_a_short_and_a_long_session(api, llm):
    llm.enqueue(Text("hi"))
    _, first = api.post("/api/v1/agents/oai/runs/", {"input": "hello"})
    session_id = first["session_id"]

    def one_run() -> None:
        llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("3"))
        status, _ = api.post("/api/v1/agents/oai/runs/", {"input": "1+2", "session_id": session_id})
        assert status == 201

    short = _queries(one_run)
    _grow(api, llm, session_id, 30)
    long = _queries(one_run)

    assert short == long
    # key, agent, permissions, session lock, next position, run, then per step one INSERT of
    # messages and one of events, history, the run's final UPDATE and the session's count
    assert short <= 17, f"{short} queries for one run with one tool call"


@pytest.mark.django_db
def test_reading_the_last_messages_costs_the_same_queries_in_a_short_and_a_long_session(
    api, llm, django_assert_max_num_queries
):
    llm.enqueue(Text("hi"))
    _, first = api.post("/api/v1/agents/oai/runs/", {"input": "hello"})
    url = f"/api/v1/sessions/{first['session_id']}/messages/?order=desc&limit=50"

    short = _queries(lambda: api.get(url))
    _grow(api, llm, first["session_id"], 30)
    long = _queries(lambda: api.get(url))

    assert short == long
    with django_assert_max_num_queries(4):
        status, page = api.get(url)
    assert status == 200
    assert len(page["results"]) == 50
