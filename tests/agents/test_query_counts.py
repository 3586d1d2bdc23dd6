"""Hot paths run a fixed number of queries, whatever the session's length.

These tests never commit (no worker ever sees their runs): each run is created in the
background mode and then executed here, so that every query it makes is counted.
"""

from __future__ import annotations

from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import services
from tests.fakes.llm_server import Call, Text, ToolCalls


def _queries(action) -> int:
    """Statements run, not counting the savepoints the test's own transaction adds."""
    with CaptureQueriesContext(connection) as captured:
        action()
    return sum(1 for query in captured if "SAVEPOINT" not in query["sql"])


def _run(api, llm, session_id: str | None = None) -> tuple[str, int, int]:
    """A run with one tool call: (session id, queries to create it, queries to execute it)."""
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("3"))
    body = {"input": "1+2", "background": True, **({"session_id": session_id} if session_id else {})}
    created: dict = {}

    def create() -> None:
        status, created["run"] = api.post("/api/v1/agents/oai/runs/", body)
        assert status == 202

    create_queries = _queries(create)
    run = created["run"]
    execute_queries = _queries(lambda: services.execute_queued_run(UUID(run["id"])))
    return run["session_id"], create_queries, execute_queries


@pytest.mark.django_db
def test_creating_and_executing_a_run_costs_the_same_in_a_short_and_a_long_session(api, llm):
    session_id, _, _ = _run(api, llm)
    _, short_create, short_execute = _run(api, llm, session_id)
    for _ in range(30):
        _run(api, llm, session_id)

    _, long_create, long_execute = _run(api, llm, session_id)

    assert (short_create, short_execute) == (long_create, long_execute)
    # key, agent, the key's agent restriction (a plain query: cheaper for Django to build than one
    # subquery), the queued runs' count (admission), session or session lock, run
    assert short_create <= 8, f"{short_create} queries to create a run"
    # claim, the run (with its session's count: where its messages start), user message and started
    # event, the context sources bound in the admin, the history, permissions, then per step one INSERT of
    # messages and one of events, the run's final UPDATE, the session's count and the session's
    # next queued run, and the owner's webhook endpoints (the outbox)
    assert short_execute <= 17, f"{short_execute} queries to execute a run with one tool call"


@pytest.mark.django_db
def test_reading_the_last_messages_costs_the_same_queries_in_a_short_and_a_long_session(
    api, llm, django_assert_max_num_queries
):
    session_id, _, _ = _run(api, llm)
    url = f"/api/v1/sessions/{session_id}/messages/?order=desc&limit=50"

    short = _queries(lambda: api.get(url))
    for _ in range(15):
        _run(api, llm, session_id)
    long = _queries(lambda: api.get(url))

    assert short == long
    with django_assert_max_num_queries(4):
        status, page = api.get(url)
    assert status == 200
    assert len(page["results"]) == 50
