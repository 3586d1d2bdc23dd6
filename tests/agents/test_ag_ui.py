"""AG-UI, end to end: RunAgentInput posted with httpx to a real Daphne process (the in-process
worker, the fake model), each event of the SSE stream decoded and validated with the
`ag-ui-protocol` package's own event models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from ag_ui.core import Event, EventType, RunAgentInput
from pydantic import TypeAdapter

from agents.models import Message, Run, RunStatus, Session
from approvals.models import ApprovalRequest, ApprovalStatus
from tests import sample_agents
from tests.fakes.llm_server import Call, Error, Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS: TypeAdapter[Any] = TypeAdapter(Event)  # any AG-UI event, by its type
EMAIL = {"to": "ann@example.com", "subject": "Hi"}
EDITED = {"to": "ann@example.org", "subject": "Hi"}


@pytest.fixture
def every_chunk(settings):
    """The worker stores each chunk of the answer as it comes (not joined with the next)."""
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "DELTA_INTERVAL": 0.0}


@pytest.fixture
def post(daphne) -> Callable[..., httpx.Response]:
    base = daphne.url.replace("ws://", "http://") + "/ag-ui"

    def post(agent: str, key: str | None, body: object, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        return httpx.post(f"{base}/{agent}", content=content, headers=headers, timeout=60, **kwargs)

    return post


def run_input(text: str, thread_id: str | None = None, **more: object) -> dict:
    body = {
        "threadId": thread_id or str(uuid.uuid4()),
        "runId": str(uuid.uuid4()),
        "messages": [{"id": "u1", "role": "user", "content": text}],
        "tools": [],
        "state": {},
        "context": [],
        "forwardedProps": {},
        **more,
    }
    RunAgentInput.model_validate(body)  # what a client sends is valid AG-UI
    return body


def decode(response: httpx.Response) -> list[Any]:
    """Every `data:` line of the stream, validated as an AG-UI event."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [
        EVENTS.validate_json(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def kinds(events: list[Any]) -> list[str]:
    return [event.type.value for event in events]


def test_the_answer_streams_as_a_text_message_between_run_started_and_run_finished(post, api, llm, every_chunk):
    llm.enqueue(Text("Paris is sunny today."))
    body = run_input("Weather in Paris?")

    events = decode(post("oai", api.key, body))

    run = Run.objects.get()
    assert kinds(events)[0] == "RUN_STARTED"
    started = events[0]
    assert (started.thread_id, started.run_id) == (body["threadId"], body["runId"])
    assert started.metadata["agentplatform"] == {
        "session_id": str(run.session_id),
        "run_id": str(run.pk),
        "agent": "oai",
    }
    text = [e for e in events if e.type.value.startswith("TEXT_MESSAGE")]
    assert kinds(text)[0] == "TEXT_MESSAGE_START"
    assert kinds(text)[-1] == "TEXT_MESSAGE_END"
    assert set(kinds(text[1:-1])) == {"TEXT_MESSAGE_CONTENT"}  # the chunks as written (close ones may be joined)
    assert {e.message_id for e in text} == {text[0].message_id}
    assert "".join(e.delta for e in text[1:-1]) == "Paris is sunny today."
    assert kinds(events)[-2:] == ["MESSAGES_SNAPSHOT", "RUN_FINISHED"]
    finished = events[-1]
    assert (finished.thread_id, finished.run_id, finished.result) == (
        body["threadId"],
        body["runId"],
        "Paris is sunny today.",
    )
    assert finished.outcome is None  # success
    assert (finished.usage[0].input_tokens, finished.usage[0].output_tokens) == (10, 5)
    snapshot = events[-2].messages
    assert [(m.role, m.content) for m in snapshot] == [
        ("user", "Weather in Paris?"),
        ("assistant", "Paris is sunny today."),
    ]


def test_the_agents_tool_calls_stream_with_their_results(post, api, llm):
    llm.enqueue(ToolCalls([Call("get_weather", {"city": "Paris"}, id="call_w")]), Text("It is sunny in Paris."))

    events = decode(post("oai", api.key, run_input("Weather?")))

    calls = [e for e in events if e.type.value.startswith("TOOL_CALL")]
    assert kinds(calls) == ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT"]
    assert {e.tool_call_id for e in calls} == {"call_w"}
    assert calls[0].tool_call_name == "get_weather"
    assert json.loads(calls[1].delta) == {"city": "Paris"}
    assert calls[3].content == "sunny in Paris, 21 celsius"
    assert kinds(events).index("TOOL_CALL_RESULT") < kinds(events).index("TEXT_MESSAGE_START")
    assert sample_agents.CALLS == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    snapshot = next(e for e in events if e.type == EventType.MESSAGES_SNAPSHOT).messages
    assert [m.role for m in snapshot] == ["user", "assistant", "tool", "assistant"]
    assert snapshot[1].tool_calls[0].function.name == "get_weather"
    assert snapshot[2].tool_call_id == "call_w"


def test_a_second_run_on_the_thread_continues_its_session(post, api, llm):
    llm.enqueue(Text("Noted: Paris."), Text("You asked about Paris."), Text("Still Paris."))
    thread = "chat-1"  # a client's own thread id
    decode(post("oai", api.key, run_input("Remember Paris.", thread)))

    second = decode(post("oai", api.key, run_input("What did I ask?", thread)))

    session = Session.objects.get()
    assert Run.objects.filter(session=session).count() == 2
    assert "Remember Paris." in json.dumps(llm.requests[-1].body["messages"])
    assert second[-1].result == "You asked about Paris."
    # the session's own id names the thread too
    third = decode(post("oai", api.key, run_input("And now?", str(session.pk))))
    assert third[0].metadata["agentplatform"]["session_id"] == str(session.pk)
    assert Session.objects.count() == 1


def test_a_retried_run_input_replays_its_run_and_starts_no_other(post, api, llm):
    # Given a run input on a new thread, answered
    llm.enqueue(Text("Paris is sunny today."))
    body = run_input("Weather in Paris?", "chat-retry")
    first = decode(post("oai", api.key, body))

    # When the client sends it again (its connection dropped before it read the stream's end)
    again = decode(post("oai", api.key, body))

    # Then it gets the same run's stream from its start, and no run or model call is added
    assert kinds(again) == kinds(first)
    assert again[0].metadata == first[0].metadata
    assert again[-1].result == first[-1].result == "Paris is sunny today."
    assert Run.objects.count() == 1
    assert len(llm.requests) == 1
    # And the same runId with another message is refused, with nothing written
    other = post("oai", api.key, {**body, "messages": [{"id": "u2", "role": "user", "content": "And Rome?"}]})
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert other.json()["error"]["details"]["run_id"] == first[0].metadata["agentplatform"]["run_id"]
    assert (Run.objects.count(), Session.objects.count()) == (1, 1)


def test_a_new_thread_takes_the_earlier_messages_as_its_history(post, api, llm):
    llm.enqueue(Text("You asked about Paris."))
    body = run_input("What did I ask?")
    body["messages"] = [
        {"id": "s", "role": "system", "content": "Talk like a pirate."},
        {"id": "1", "role": "user", "content": "Weather in Paris?"},
        {
            "id": "2",
            "role": "assistant",
            "toolCalls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"id": "3", "role": "tool", "toolCallId": "c1", "content": "sunny"},
        {"id": "4", "role": "assistant", "content": "Sunny in Paris."},
        {"id": "5", "role": "user", "content": [{"type": "text", "text": "What did I ask?"}]},
    ]

    decode(post("oai", api.key, body))

    assert Run.objects.get().input == "What did I ask?"
    sent = llm.requests[-1].body["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "tool", "assistant", "user"]
    assert "pirate" not in json.dumps(sent)
    assert sample_agents.CALLS == []  # history is not executed again


def test_a_confirm_call_ends_the_run_with_an_interrupt_and_resume_decides_it(post, api, make_api, llm):
    # Given a run paused on a CONFIRM call, by a key that may decide approvals
    llm.enqueue(ToolCalls([Call("send_email", EMAIL, id="call_e")]), Text("Sent."))
    key = make_api("rita", scopes=["approvals:decide"]).key
    body = run_input("Email Ann", "mail-thread")

    paused = decode(post("oai", key, body))

    approval = ApprovalRequest.objects.get()
    assert "TOOL_CALL_START" in kinds(paused)
    custom = next(e for e in paused if e.type == EventType.CUSTOM)
    assert custom.name == "approval_required"
    assert [a["approval_id"] for a in custom.value["approvals"]] == [str(approval.pk)]
    assert kinds(paused)[-3:] == ["CUSTOM", "MESSAGES_SNAPSHOT", "RUN_FINISHED"]
    (interrupt,) = paused[-1].outcome.interrupts
    assert (interrupt.id, interrupt.tool_call_id, interrupt.reason) == (str(approval.pk), "call_e", "tool_approval")
    assert Run.objects.get().status == RunStatus.AWAITING_APPROVAL
    assert sample_agents.CALLS == []

    # When the client resumes the thread, approving with edited arguments
    payload = {"approved": True, "arguments": EDITED}
    resume = run_input(
        "", "mail-thread", resume=[{"interruptId": str(approval.pk), "status": "resolved", "payload": payload}]
    )
    done = decode(post("oai", key, resume))

    # Then the call runs, and the rest of the run streams
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert kinds(done)[0] == "RUN_STARTED"
    assert done[0].run_id == resume["runId"]
    assert "TOOL_CALL_RESULT" in kinds(done)
    assert done[-1].type == EventType.RUN_FINISHED
    assert done[-1].result == "Sent."
    assert sample_agents.CALLS == [("send_email", EDITED)]  # what runs is what was approved
    assert approval.approved_arguments == EDITED
    assert Run.objects.count() == 1


def test_a_cancelled_interrupt_rejects_the_call_and_the_model_reads_why(post, make_api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL, id="call_e")]), Text("I did not send it."))
    key = make_api("rita", scopes=["approvals:decide"]).key
    paused = decode(post("oai", key, run_input("Email Ann", "t")))
    (interrupt,) = paused[-1].outcome.interrupts

    done = decode(post("oai", key, run_input("", "t", resume=[{"interruptId": interrupt.id, "status": "cancelled"}])))

    assert ApprovalRequest.objects.get().status == ApprovalStatus.REJECTED
    result = next(e for e in done if e.type == EventType.TOOL_CALL_RESULT)
    assert result.tool_call_id == "call_e"
    assert "The user cancelled the call." in result.content
    assert "The user cancelled the call." in json.dumps(llm.requests[-1].body["messages"])
    assert done[-1].result == "I did not send it."
    assert sample_agents.CALLS == []


def test_resuming_needs_the_right_to_decide(post, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))
    paused = decode(post("oai", api.key, run_input("Email Ann", "t")))
    (interrupt,) = paused[-1].outcome.interrupts
    resume = run_input("", "t", resume=[{"interruptId": interrupt.id, "status": "resolved", "payload": True}])

    refused = post("oai", api.key, resume)
    elsewhere = post("calc", api.key, resume)  # another agent's endpoint resumes nothing of this one's

    assert refused.status_code == 403
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (400, "session_agent_mismatch")
    assert ApprovalRequest.objects.get().status == ApprovalStatus.PENDING
    busy = post("oai", api.key, run_input("And now?", "t"))  # new input waits for the decisions
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "approval_pending")


def test_a_failed_run_ends_with_run_error(post, api, llm):
    llm.enqueue(Error(400, "The model refuses."))

    events = decode(post("oai", api.key, run_input("Hi")))

    assert kinds(events)[0] == "RUN_STARTED"
    assert kinds(events)[-1] == "RUN_ERROR"
    assert "RUN_FINISHED" not in kinds(events)
    assert events[-1].code == "provider_error"
    assert "The model refuses." in events[-1].message


def test_another_owners_thread_is_not_continued(post, api, make_api, llm):
    llm.enqueue(Text("Secret."), Text("Hello Bob."), Text("Hello again."))
    decode(post("oai", api.key, run_input("My secret", "shared-name")))
    mine = Session.objects.get()
    bob = make_api("bob").key

    by_name = decode(post("oai", bob, run_input("Tell me", "shared-name")))
    by_id = decode(post("oai", bob, run_input("Tell me", str(mine.pk))))

    for events in (by_name, by_id):
        assert events[0].metadata["agentplatform"]["session_id"] != str(mine.pk)
        assert "Secret" not in json.dumps([m.model_dump() for m in events[-2].messages])
    assert "My secret" not in json.dumps(llm.requests[-1].body["messages"])
    assert Message.objects.filter(session=mine).count() == 2


def test_bad_requests_get_json_errors_before_the_stream_and_write_nothing(post, api):
    assert post("oai", "ap_not-a-key", run_input("hi")).status_code == 401
    assert post("oai", None, run_input("hi")).status_code == 401
    unknown = post("no-such-agent", api.key, run_input("hi"))
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "agent_not_found")
    malformed = post("oai", api.key, b"{not json")
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "malformed_json")
    for body in (
        {"threadId": "t", "messages": []},  # no runId
        {"threadId": "t", "runId": "r", "messages": [{"id": "1", "role": "robot", "content": "hi"}]},
        run_input("hi") | {"messages": [{"id": "1", "role": "assistant", "content": "hello"}]},  # nothing to answer
        run_input("hi") | {"messages": []},
        [1, 2],
    ):
        bad = post("oai", api.key, body)
        assert bad.status_code == 400, body
        assert set(bad.json()["error"]) == {"code", "message", "details"}
    nothing = post("oai", api.key, run_input("", "t", resume=[{"interruptId": "x", "status": "cancelled"}]))
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "nothing_to_resume")
    assert Run.objects.count() == 0
    assert Session.objects.count() == 0
