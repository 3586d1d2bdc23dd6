"""One active run per session, enforced by the database while a run is in flight."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections

from agents import services
from agents.models import Message, Run, RunEvent, RunStatus, Session
from agents.services.record import RunRecord
from tests import sample_agents
from tests.factories import agent_row
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


@pytest.mark.django_db(transaction=True)
def test_a_worker_does_not_start_a_run_while_another_run_of_its_session_is_running(alice):
    # Given a session whose first run a worker holds, and a second run queued behind it
    agent = agent_row("calc")
    session = Session.objects.create(owner=alice, agent=agent)
    Run.objects.create(session=session, agent=agent, owner=alice, status=RunStatus.RUNNING, input="first")
    queued = Run.objects.create(session=session, agent=agent, owner=alice, status=RunStatus.QUEUED, input="second")

    # When a worker is handed the queued run (a redelivery, say)
    summary = services.execute_queued_run(queued.pk)

    # Then it is not started, stays queued for its turn, and nothing was written for it
    assert summary == {"run_id": str(queued.pk), "executed": False, "status": RunStatus.QUEUED}
    queued.refresh_from_db()
    assert (queued.status, queued.started_at) == (RunStatus.QUEUED, None)
    assert not Message.objects.filter(run=queued).exists()
    assert not RunEvent.objects.filter(run=queued).exists()


@pytest.mark.django_db(transaction=True)
def test_a_claim_that_fails_halfway_leaves_the_run_queued(alice, monkeypatch):
    # Given a queued run, and a database that fails the worker's first write (a lost connection, say)
    agent = agent_row("calc")
    session = Session.objects.create(owner=alice, agent=agent)
    queued = Run.objects.create(session=session, agent=agent, owner=alice, status=RunStatus.QUEUED, input="hello")

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(RunRecord, "write", lost)

    # When a worker claims it
    with pytest.raises(OperationalError):
        services.execute_queued_run(queued.pk)

    # Then the claim went with the failed write: the run is still queued (the requeue hands it
    # to a worker again), not running with nothing written
    queued.refresh_from_db()
    assert (queued.status, queued.started_at, queued.lease_expires_at) == (RunStatus.QUEUED, None, None)
