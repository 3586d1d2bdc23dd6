"""Multitask strategies: what new input to a busy thread does."""

from __future__ import annotations

import pytest
from langgraph_sdk.client import SyncLangGraphClient

from agents.models import Run, RunStatus
from tests import sample_agents
from tests.agents.langgraph import says
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _busy_thread(client: SyncLangGraphClient) -> tuple[str, str]:
    """A thread whose run waits at the gate (the model's first reply must call `wait_at_gate`)."""
    sample_agents.GATE.clear()
    tid = client.threads.create()["thread_id"]
    rid = client.runs.create(tid, "oai", input=says("Wait at the gate"))["run_id"]
    wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)
    return tid, rid


def test_enqueue_runs_the_new_input_after_the_active_run(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("First done."), Text("Second done."))
    client = connect(api.key)
    tid, first = _busy_thread(client)

    second = client.runs.create(tid, "oai", input=says("And then?"), multitask_strategy="enqueue")
    sample_agents.GATE.set()
    values = client.runs.join(tid, second["run_id"])

    assert (second["status"], second["multitask_strategy"]) == ("pending", "enqueue")
    assert client.runs.get(tid, first)["status"] == "success"
    assert client.runs.get(tid, second["run_id"])["status"] == "success"
    said = [m["content"] for m in values["messages"] if m["type"] in ("human", "ai") and m["content"]]
    assert said == ["Wait at the gate", "First done.", "And then?", "Second done."]


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
def test_interrupt_and_rollback_cancel_the_active_run_for_the_new_input(daphne, connect, api, llm, strategy):
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("Second done."))  # the first run asks no more
    client = connect(api.key)
    tid, first = _busy_thread(client)

    second = client.runs.create(tid, "oai", input=says("Never mind"), multitask_strategy=strategy)
    sample_agents.GATE.set()
    values = client.runs.join(tid, second["run_id"])

    assert second["multitask_strategy"] == strategy
    assert client.runs.get(tid, first)["status"] == "interrupted"
    assert Run.objects.get(pk=first).status == RunStatus.CANCELLED
    assert client.runs.get(tid, second["run_id"])["status"] == "success"
    assert values["messages"][-1]["content"] == "Second done."
    assert len(llm.requests) == 2
