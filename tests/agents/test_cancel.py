"""Cancel: a queued run at once, a running one at its next step, on whichever worker holds it."""

from __future__ import annotations

import pytest

from agents.models import Agent, Message, Run, RunEvent, Session
from tests import sample_agents
from tests.fakes.llm_server import Call, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_running_run_stops_at_its_next_step(api, llm):
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))  # a second model call would be a failure to cancel
    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "wait", "background": True})
    assert (status, run["status"]) == (202, "queued")
    wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)

    status, cancelling = api.post(f"/api/v1/runs/{run['id']}/cancel")
    sample_agents.GATE.set()

    assert (status, cancelling["status"]) == (202, "running")
    assert cancelling["cancel_requested_at"]
    wait_until(lambda: Run.objects.get(pk=run["id"]).status != "running")
    final = api.get(f"/api/v1/runs/{run['id']}/")[1]
    assert final["status"] == "cancelled"
    assert final["error"]["code"] == "cancelled"
    assert len(llm.requests) == 1
    types = list(RunEvent.objects.filter(run_id=run["id"]).values_list("type", flat=True))
    assert types == ["run.started", "tool.call.started", "tool.call.completed", "run.cancelled"]


def test_a_queued_run_is_cancelled_at_once(api, alice):
    session = Session.objects.create(owner=alice, agent_id=_agent_id("calc"))
    queued = Run.objects.create(session=session, agent=session.agent, owner=alice, status="queued", input="1+1")
    Message.objects.create(session=session, run=queued, position=0, role="user", content="1+1")

    status, body = api.post(f"/api/v1/runs/{queued.pk}/cancel")

    assert (status, body["status"]) == (200, "cancelled")
    assert list(RunEvent.objects.filter(run=queued).values_list("type", flat=True)) == ["run.cancelled"]


def test_a_finished_run_cannot_be_cancelled_and_others_cannot_see_it(api, llm, make_api):
    _, run = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})

    status, body = api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert (status, body["error"]["code"]) == (409, "run_not_active")
    status, body = make_api("mallory").post(f"/api/v1/runs/{run['id']}/cancel")
    assert (status, body["error"]["code"]) == (404, "run_not_found")


def _agent_id(name: str) -> int:
    return Agent.objects.get(name=name).pk
