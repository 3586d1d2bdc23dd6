"""Assistants, threads, runs waited for or in the background, approvals as interrupts."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.errors import AuthenticationError, ConflictError, NotFoundError
from langgraph_sdk.schema import Command

from agents.langgraph.translate import assistant_id
from agents.models import Run, RunStatus, Session
from approvals.models import ApprovalRequest
from tests import sample_agents
from tests.agents.langgraph import lg_url, says
from tests.factories import agent_row
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_assistants_are_the_agents_the_key_may_use(daphne, connect, api, make_api):
    client = connect(api.key)

    found = client.assistants.search(limit=100)

    names = {a["graph_id"] for a in found}
    assert {"oai", "claude", "calc", "mailer"} <= names
    oai = next(a for a in found if a["graph_id"] == "oai")
    assert oai["assistant_id"] == assistant_id("oai")
    assert client.assistants.get(oai["assistant_id"]) == oai
    assert client.assistants.get("oai") == oai  # the graph name works where an id is taken
    assert client.assistants.search(graph_id="calc")[0]["graph_id"] == "calc"
    # a key restricted to one agent sees that one only
    limited = connect(make_api("carol", agents=[agent_row("calc")]).key)
    assert [a["graph_id"] for a in limited.assistants.search()] == ["calc"]
    with pytest.raises(NotFoundError):
        limited.assistants.get(oai["assistant_id"])


def test_a_thread_keeps_the_conversation_across_waited_runs(daphne, connect, api, llm):
    llm.enqueue(
        ToolCalls([Call("get_weather", {"city": "Paris"})]),
        Text("It is sunny in Paris."),
        Text("You asked about Paris."),
    )
    client = connect(api.key)
    thread = client.threads.create()
    tid = thread["thread_id"]

    first = client.runs.wait(tid, "oai", input=says("Weather in Paris?"))
    second = client.runs.wait(tid, assistant_id("oai"), input=says("What did I ask?"))

    kinds = [m["type"] for m in second["messages"]]
    assert kinds == ["human", "ai", "tool", "ai", "human", "ai"]
    assert first["messages"] == second["messages"][:4]
    call = first["messages"][1]["tool_calls"][0]
    assert (call["name"], call["args"], call["type"]) == ("get_weather", {"city": "Paris"}, "tool_call")
    assert first["messages"][2]["tool_call_id"] == call["id"]
    assert first["messages"][2]["content"] == "sunny in Paris, 21 celsius"
    assert second["messages"][-1]["content"] == "You asked about Paris."
    assert len({m["id"] for m in second["messages"]}) == 6
    # the model was given the thread's conversation on the second run
    assert "Weather in Paris?" in str(llm.requests[-1].body["messages"])
    # the thread is the session: its state and status say so
    state = client.threads.get_state(tid)
    assert state["values"] == second
    assert state["next"] == []
    assert state["tasks"] == []
    got = client.threads.get(tid)
    assert got["status"] == "idle"
    assert got["metadata"]["graph_id"] == "oai"
    assert got["values"] == second
    history = client.threads.get_history(tid)
    assert [len(s["values"]["messages"]) for s in history] == [6, 4]  # after each run, newest first
    assert Session.objects.get(pk=tid).agent.name == "oai"


def test_a_stateless_wait_runs_on_a_new_thread(daphne, connect, api, llm):
    llm.enqueue(Text("Hi."))
    client = connect(api.key)

    values = client.runs.wait(None, "oai", input={"messages": [{"type": "human", "content": "Hello"}]})

    assert [(m["type"], m["content"]) for m in values["messages"]] == [("human", "Hello"), ("ai", "Hi.")]
    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert run.session.owner.username == "alice"


def test_a_background_run_is_created_joined_got_and_listed(daphne, connect, api, llm):
    llm.enqueue(Text("Done."))
    client = connect(api.key)
    tid = client.threads.create(metadata={"topic": "reports"})["thread_id"]

    run = client.runs.create(tid, "oai", input=says("Write the report"), metadata={"ticket": "T-1"})
    values = client.runs.join(tid, run["run_id"])

    assert run["thread_id"] == tid
    assert run["assistant_id"] == assistant_id("oai")
    assert run["status"] in ("pending", "running", "success")
    assert values["messages"][-1]["content"] == "Done."
    got = client.runs.get(tid, run["run_id"])
    assert got["status"] == "success"
    assert got["metadata"] == {"ticket": "T-1"}
    assert [r["run_id"] for r in client.runs.list(tid)] == [run["run_id"]]
    assert client.runs.list(tid, status="error") == []
    # threads are found by their metadata and status
    found = client.threads.search(metadata={"topic": "reports"})
    assert [t["thread_id"] for t in found] == [tid]
    assert found[0]["values"] == values  # with their values, as threads.get has them
    assert [t["thread_id"] for t in client.threads.search(status="idle")] == [tid]
    assert client.threads.search(status="busy") == []


def test_a_busy_thread_rejects_a_run_and_a_cancelled_run_is_interrupted(daphne, connect, api, llm):
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))  # a second model call would be a failure to cancel
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "oai", input=says("Wait at the gate"))
    wait_until(lambda: ("wait_at_gate", {}) in sample_agents.CALLS)

    with pytest.raises(ConflictError):
        client.runs.create(tid, "oai", input=says("And now?"), multitask_strategy="reject")
    assert client.threads.get(tid)["status"] == "busy"
    cancelling = client.runs.cancel(tid, run["run_id"])
    sample_agents.GATE.set()
    client.runs.join(tid, run["run_id"])

    assert cancelling["status"] == "running"
    assert client.runs.get(tid, run["run_id"])["status"] == "interrupted"
    assert len(llm.requests) == 1
    assert Run.objects.count() == 1  # the rejected run was never written


def test_another_owners_thread_is_not_found(daphne, connect, api, make_api, llm):
    llm.enqueue(Text("Secret."))
    alice = connect(api.key)
    tid = alice.threads.create()["thread_id"]
    rid = alice.runs.create(tid, "oai", input=says("My secret"))["run_id"]
    alice.runs.join(tid, rid)
    bob = connect(make_api("bob").key)

    for call in (
        lambda: bob.threads.get(tid),
        lambda: bob.threads.get_state(tid),
        lambda: bob.threads.delete(tid),
        lambda: bob.runs.get(tid, rid),
        lambda: bob.runs.list(tid),
        lambda: bob.runs.wait(tid, "oai", input=says("Tell me")),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:  # runs.wait raises httpx's error itself
            call()
        assert refused.value.response.status_code == 404
    assert bob.threads.search() == []
    assert Run.objects.count() == 1
    assert Session.objects.count() == 1
    alice.threads.delete(tid)
    with pytest.raises(NotFoundError):
        alice.threads.get(tid)


def test_bad_requests_answer_in_langgraphs_error_shape(daphne, connect, api):
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    for bad, status in (
        ({"input": {"text": "no messages"}}, 422),
        ({"command": Command(resume={"approved": True})}, 409),  # nothing to resume
        ({"command": Command(goto="tools")}, 422),
        ({"input": says("hi"), "multitask_strategy": "sometimes"}, 422),
        ({"input": says("hi"), "assistant_id": "no-such-agent"}, 404),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            client.runs.wait(tid, **{"assistant_id": "oai", **bad})
        assert refused.value.response.status_code == status
    assert client.threads.search(metadata={"a__contains": "x"}) == []  # a key, not a lookup
    with pytest.raises(AuthenticationError):
        connect("ap_not-a-key").assistants.search()
    response = httpx.get(f"{lg_url(daphne)}/threads/not-a-uuid", headers={"x-api-key": api.key})
    assert response.status_code == 404
    assert response.json()["detail"]
    url = f"{lg_url(daphne)}/threads/{tid}/runs/wait"
    response = httpx.post(url, json={"input": {}}, headers={"x-api-key": api.key})
    assert response.status_code == 422
    assert set(response.json()) == {"detail", "code"}
    assert Run.objects.count() == 0


def test_searching_threads_takes_the_same_queries_for_one_thread_or_many(api, alice, django_assert_num_queries):
    # Given one thread, then five, each with a run
    def search() -> list:
        status, found = api.post("/langgraph/threads/search", {"limit": 50})
        assert status == 200, found
        return found

    _threads_with_runs(alice, 1)
    search()  # the key's first use records it
    with django_assert_num_queries(3):  # the key with its user, the threads with their status, their messages
        assert len(search()) == 1
    _threads_with_runs(alice, 4)

    # When they are searched, Then the queries do not grow with the threads
    with django_assert_num_queries(3):
        found = search()
    assert len(found) == 5
    assert {t["status"] for t in found} == {"idle"}


def _threads_with_runs(owner, count: int) -> None:
    agent = agent_row("oai")
    for _ in range(count):
        session = Session.objects.create(owner=owner, agent=agent)
        Run.objects.create(session=session, agent=agent, owner=owner, status=RunStatus.COMPLETED, input="hi")


def test_a_call_waiting_for_approval_is_an_interrupt(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    values = client.runs.wait(tid, "oai", input=says("Email Ann"))

    (interrupt,) = values["__interrupt__"]
    approval = ApprovalRequest.objects.get()
    assert interrupt["id"] == str(approval.pk)
    assert interrupt["value"]["tool"] == "send_email"
    assert interrupt["value"]["arguments"] == {"to": "ann@example.com", "subject": "Hi"}
    assert values["messages"][-1]["tool_calls"][0]["id"] == interrupt["value"]["call_id"]
    assert client.threads.get(tid)["status"] == "interrupted"
    state = client.threads.get_state(tid)
    assert state["next"] == ["tools"]
    assert state["interrupts"] == [interrupt]
    assert state["tasks"][0]["interrupts"] == [interrupt]
    assert "__interrupt__" not in state["values"]


def test_a_command_resumes_the_interrupt_through_the_approvals_service(daphne, connect, api, make_api, llm):
    # Given a run paused on a CONFIRM call, on the thread of a key that may decide
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]), Text("Sent."))
    reviewer = make_api("rita", scopes=["approvals:decide"])
    client = connect(reviewer.key)
    tid = client.threads.create()["thread_id"]
    (interrupt,) = client.runs.wait(tid, "oai", input=says("Email Ann"))["__interrupt__"]

    # When a key without the right tries, then the reviewer approves with edited arguments
    with pytest.raises(httpx.HTTPStatusError) as refused:
        connect(api.key).runs.wait(tid, "oai", command=Command(resume={"approved": True}))
    assert refused.value.response.status_code == 404  # not even visible to another owner
    edited = {"to": "ann@example.com", "subject": "Hello"}
    values = client.runs.wait(
        tid, "oai", command=Command(resume={interrupt["id"]: {"approved": True, "arguments": edited}})
    )

    # Then the tool ran with exactly the approved arguments and the run finished
    assert "__interrupt__" not in values
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "tool", "ai"]
    assert values["messages"][-1]["content"] == "Sent."
    assert [("send_email", edited)] == sample_agents.CALLS
    approval = ApprovalRequest.objects.get()
    assert approval.status == "approved"
    assert approval.decided_by is not None
    assert approval.decided_by.username == "rita"
    assert client.threads.get(tid)["status"] == "idle"
    assert Run.objects.count() == 1  # a resume continues the paused run


def test_resuming_needs_the_right_to_decide(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]))
    client = connect(api.key)  # a key without the approvals:decide scope
    tid = client.threads.create()["thread_id"]
    client.runs.wait(tid, "oai", input=says("Email Ann"))

    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(tid, "oai", command=Command(resume={"approved": False, "reason": "no"}))

    assert refused.value.response.status_code == 403
    assert ApprovalRequest.objects.get().status == "pending"
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(tid, "oai", command=Command(resume="yes"))
    assert refused.value.response.status_code == 422
