"""New input to a session with an active run: reject (409), enqueue (runs after), or interrupt."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connections

from agents.models import Message, Run
from tests import sample_agents
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def blocked_run(api, llm):
    """A run of `oai` held inside a tool call until the test opens the gate."""
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "first", "background": True})
    wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)
    yield run
    sample_agents.GATE.set()
    wait_until(lambda: _finished(run["id"]))  # nothing of this test still writes when the next one starts


def _finished(run_id: str) -> bool:
    return Run.objects.get(pk=run_id).status not in ("queued", "running")


def _in_parallel(count: int, send) -> list[tuple[int, dict]]:
    answers: list[tuple[int, dict]] = []

    def target() -> None:
        try:
            answers.append(send())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_enqueued_runs_run_after_the_active_one_in_order_and_see_its_messages(api, llm, blocked_run):
    session = blocked_run["session_id"]
    llm.enqueue(Text("first done"), Text("second done"), Text("third done"))
    body = {"session_id": session, "if_busy": "enqueue", "background": True}
    _, second = api.post("/api/v1/agents/oai/runs/", {**body, "input": "second"})
    _, third = api.post("/api/v1/agents/oai/runs/", {**body, "input": "third"})
    assert (second["status"], third["status"]) == ("queued", "queued")

    sample_agents.GATE.set()
    wait_until(lambda: all(_finished(r["id"]) for r in (blocked_run, second, third)))

    runs = list(Run.objects.filter(session_id=session).order_by("started_at"))
    assert [(r.input, r.status, r.output) for r in runs] == [
        ("first", "completed", "first done"),
        ("second", "completed", "second done"),
        ("third", "completed", "third done"),
    ]
    positions = list(Message.objects.filter(session_id=session).order_by("position").values_list("position", flat=True))
    assert positions == list(range(len(positions)))
    sent = [(m["role"], m.get("content")) for m in llm.requests[2].body["messages"]]
    assert ("assistant", "first done") in sent  # the second run saw the first one's answer
    assert sent[-1] == ("user", "second")


def test_interrupt_cancels_the_active_run_then_runs(api, llm, blocked_run):
    llm.enqueue(Text("second done"))

    status, second = api.post(
        "/api/v1/agents/oai/runs/",
        {"input": "second", "session_id": blocked_run["session_id"], "if_busy": "interrupt", "background": True},
    )
    sample_agents.GATE.set()
    wait_until(lambda: _finished(second["id"]))

    assert status == 202
    first = Run.objects.get(pk=blocked_run["id"])
    assert (first.status, first.error["code"] if first.error else None) == ("cancelled", "cancelled")
    assert Run.objects.get(pk=second["id"]).output == "second done"


def test_concurrent_input_is_refused_with_the_active_run_by_default(api, blocked_run):
    answers = _in_parallel(
        4, lambda: api.post("/api/v1/agents/oai/runs/", {"input": "me too", "session_id": blocked_run["session_id"]})
    )

    assert [(status, body["error"]["code"]) for status, body in answers] == [(409, "session_busy")] * 4
    assert {body["error"]["details"]["run_id"] for _, body in answers} == {blocked_run["id"]}
    assert Run.objects.filter(session_id=blocked_run["session_id"]).count() == 1


def test_concurrent_enqueued_input_all_runs_one_at_a_time(api):
    _, first = api.post("/api/v1/agents/calc/runs/", {"input": "1+1"})
    session = first["session_id"]

    answers = _in_parallel(
        4,
        lambda: api.post(
            "/api/v1/agents/calc/runs/",
            {"input": "2+3", "session_id": session, "if_busy": "enqueue", "background": True},
        ),
    )
    wait_until(lambda: all(_finished(body["id"]) for _, body in answers))

    assert [status for status, _ in answers] == [202] * 4
    runs = list(Run.objects.filter(session_id=session).order_by("started_at"))
    assert [r.status for r in runs] == ["completed"] * 5
    for before, after in itertools.pairwise(runs):  # never two at once
        assert before.finished_at is not None
        assert after.started_at is not None
        assert before.finished_at <= after.started_at
    positions = list(Message.objects.filter(session_id=session).order_by("position").values_list("position", flat=True))
    assert positions == list(range(30))
