"""A run paused for approval: its first trace ends with the pause; the decision's trace holds
the `approval.wait` span (from the request to the decision) and the resumed run."""

from __future__ import annotations

from typing import Any

import pytest

from agentplatform.sdk import attributes as attr
from agents.models import Run
from approvals.models import ApprovalRequest
from tests.conftest import Api
from tests.factories import create_api_key
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until
from tracing import selectors
from tracing.selectors import ns

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = {"to": "bob@example.com", "subject": "hi"}


@pytest.fixture
def reviewer(alice: Any, celery_worker: None) -> Api:
    return Api(create_api_key(alice, scopes=["approvals:decide"])[1])


def test_the_decision_trace_holds_the_approval_wait_and_the_resumed_run(tracing_on, api, reviewer, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]), Text("Sent."))
    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "email bob"})
    assert (status, run["status"]) == (202, "awaiting_approval")
    request = ApprovalRequest.objects.get(run_id=run["id"])

    status, _ = reviewer.post(f"/api/v1/approvals/{request.pk}/approve", {})
    assert status == 200
    wait_until(lambda: Run.objects.get(pk=run["id"]).status == "completed", timeout=30)
    request.refresh_from_db()
    assert request.decided_at is not None

    # Two traces: the run's until it paused, and the decision's
    names = {"approval.wait", "celery.task agents.resume_run", "agent.run", "tool.call"}
    found: dict[str, selectors.Trace] = {}

    def both() -> bool:
        tracing_on.flush()
        summaries = selectors.run_traces(run["id"], owner=None)
        if len(summaries) == 2:
            traces = [selectors.get_trace(t.trace_id, owner=None) for t in summaries]
            found.update(zip(("decision", "paused"), traces, strict=True))
        return bool(found) and names <= {span.name for span in found["decision"].spans}

    wait_until(both, timeout=30)
    paused, decision = found["paused"], found["decision"]
    paused_tool = next(s for s in paused.spans if s.name == "tool.call")
    assert paused.summary.statuses == ["awaiting_approval"]
    assert paused_tool.attributes[attr.TOOL_PERMISSION] == "confirm"
    assert paused_tool.attributes[attr.TOOL_OUTCOME] == "approval_pending"

    # The decision's trace: the request, the wait it ended, and the resumed run
    root = next(s for s in decision.spans if s.depth == 0 and s.kind == "server")
    wait = next(s for s in decision.spans if s.name == "approval.wait")
    resumed = next(s for s in decision.spans if s.name == "agent.run")
    tool = next(s for s in decision.spans if s.name == "tool.call")
    assert wait.parent_span_id == root.span_id
    assert (wait.start_ns, wait.end_ns) == (ns(request.requested_at), ns(request.decided_at))
    assert wait.attributes[attr.APPROVAL_STATUS] == "approved"
    assert wait.attributes[attr.APPROVAL_CHANNEL] == "api"
    assert wait.attributes[attr.RUN_ID] == run["id"]
    assert wait.attributes[attr.GEN_AI_TOOL_NAME] == "send_email"
    assert resumed.attributes[attr.RUN_RESUMED] is True
    assert resumed.attributes[attr.RUN_STATUS] == "completed"
    assert (tool.attributes[attr.TOOL_PERMISSION], tool.attributes[attr.TOOL_OUTCOME]) == ("confirm", "ok")

    # and the metrics count the run once, with its final status, and the wait
    _, dashboard = api.get("/api/v1/metrics/")
    assert [(row["status"], row["runs"]) for row in dashboard["runs"]] == [("completed", 1)]
    [waited] = dashboard["approvals"]
    assert (waited["status"], waited["requests"]) == ("approved", 1)
    assert waited["p50_ms"] == pytest.approx((wait.end_ns - wait.start_ns) / 1e6, abs=0.01)
