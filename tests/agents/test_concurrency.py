"""One active run per session, enforced by the database while a run is in flight."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from agents.models import Run
from tests import sample_agents
from tests.fakes.llm_server import Call, Text, ToolCalls


@pytest.mark.django_db(transaction=True)
def test_input_to_a_session_with_a_run_in_flight_is_refused_with_the_active_run(api, llm):
    llm.enqueue(Text("first"))
    _, first = api.post("/api/v1/agents/oai/runs/", {"input": "start"})
    session_id = first["session_id"]
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("done"))
    results: list[tuple[int, dict]] = []

    def slow_request() -> None:
        try:
            results.append(api.post("/api/v1/agents/oai/runs/", {"input": "slow", "session_id": session_id}))
        finally:
            connections.close_all()  # this thread's connection, so the test database can be dropped

    worker = threading.Thread(target=slow_request)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while ("wait_at_gate", {}) not in sample_agents.CALLS and time.monotonic() < deadline:
            time.sleep(0.02)
        active = Run.objects.get(session_id=session_id, status="running")

        status, body = api.post("/api/v1/agents/oai/runs/", {"input": "me too", "session_id": session_id})

        assert status == 409
        assert body["error"]["code"] == "session_busy"
        assert body["error"]["details"] == {"run_id": str(active.pk)}
    finally:
        sample_agents.GATE.set()
        worker.join(timeout=20)
    assert results[0][0] == 201
    assert results[0][1]["status"] == "completed"
    assert Run.objects.filter(session_id=session_id).count() == 2
