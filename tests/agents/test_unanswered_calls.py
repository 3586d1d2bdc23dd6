"""A run that ends without finishing its turn leaves no call unanswered: the session's next
run is accepted by the provider (OpenAI and Anthropic both refuse a transcript with a tool
call that has no result, which the fake model server does too)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import tasks
from agents.models import Message, Run, RunStatus
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _tool_results(session_id: str) -> list[tuple[str, bool]]:
    rows = Message.objects.filter(session_id=session_id, role="tool").order_by("position")
    return list(rows.values_list("content", "is_error"))


@pytest.mark.parametrize("agent", ["oai", "claude"])
def test_a_run_cancelled_while_it_waits_for_a_decision_leaves_a_session_that_goes_on(api, llm, agent):
    # Given a run paused on a CONFIRM call, then cancelled
    llm.enqueue(ToolCalls([Call("send_email", {"to": "a@example.com", "subject": "hi"})]))
    _, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "mail a@example.com"})
    assert run["status"] == "awaiting_approval"
    status, cancelled = api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert (status, cancelled["status"]) == (200, "cancelled")

    # When the session gets its next input
    llm.enqueue(Text("Anything else?"))
    status, after = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "never mind", "session_id": run["session_id"]})

    # Then the provider accepts the transcript: the call has a result saying it was not run
    assert (status, after["status"], after["output"]) == (201, "completed", "Anything else?"), after
    assert _tool_results(run["session_id"]) == [("Not executed: Cancelled.", True)]


@pytest.mark.parametrize("agent", ["oai", "claude"])
def test_a_run_whose_worker_was_lost_mid_call_leaves_a_session_that_goes_on(api, llm, agent):
    # Given a run whose worker recorded a tool call and died before its result (a lapsed lease)
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("3"))
    _, first = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "1+2"})
    run = Run.objects.get(pk=first["id"])
    run.status, run.lease_expires_at = RunStatus.RUNNING, timezone.now() - timedelta(seconds=1)
    run.save()
    Message.objects.filter(run=run, role__in=("tool",)).delete()  # as if the result never came
    Message.objects.filter(run=run, role="assistant", tool_calls=[]).delete()

    # When the reaper fails it and the session gets its next input
    assert tasks.reap_runs()["reaped"] == 1
    llm.enqueue(Text("Hello again"))
    status, after = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "hi", "session_id": first["session_id"]})

    # Then the next run is accepted by the provider
    assert (status, after["status"]) == (201, "completed"), after
    wait_until(lambda: Run.objects.get(pk=after["id"]).status == "completed")
    results = _tool_results(first["session_id"])
    assert len(results) == 1
    assert results[0][0].startswith("Not executed: The worker executing this run stopped")
