"""Streamed runs: each stream mode, joining a run's stream, resuming it after an event id."""

from __future__ import annotations

import itertools

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError
from langgraph_sdk.schema import Command

from agents import events
from agents.langgraph.parts import Parts
from agents.langgraph.selectors import thread_messages
from agents.models import Run, RunEvent
from tests import sample_agents
from tests.agents.langgraph import lg_url, says
from tests.fakes.llm_server import Call, Delay, Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_streamed_run_sends_the_threads_values_after_each_step(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    parts = list(client.runs.stream(tid, "oai", input=says("20 + 22?"), stream_mode="values"))

    assert parts[0].event == "metadata"
    run_id = parts[0].data["run_id"]
    assert Run.objects.get(pk=run_id).session_id.hex == tid.replace("-", "")
    values = [p.data for p in parts[1:]]
    assert {p.event for p in parts[1:]} == {"values"}
    kinds = [[m["type"] for m in v["messages"]] for v in values]
    assert kinds[0] == ["human"]
    assert kinds[-1] == ["human", "ai", "tool", "ai"]
    assert kinds == sorted(kinds, key=len)  # each step adds to the thread
    assert values[-1] == client.threads.get_state(tid)["values"]


def test_a_streamed_answer_comes_in_partial_messages_then_complete_ones(daphne, connect, api, llm, every_chunk):
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("The sum is 3, as computed."))
    client = connect(api.key)

    parts = list(client.runs.stream(None, "oai", input=says("1 + 2?"), stream_mode=["messages", "values"]))

    events = [p.event for p in parts]
    assert events[0] == "metadata"
    complete = [p.data[0] for p in parts if p.event == "messages/complete"]
    assert [m["type"] for m in complete] == ["ai", "tool", "ai"]
    assert complete[0]["tool_calls"][0]["args"] == {"a": 1, "b": 2}
    answer = complete[-1]
    partial = [p.data[0] for p in parts if p.event == "messages/partial"]
    assert partial, events
    assert {m["id"] for m in partial} == {answer["id"]}  # the answer has its id from its first chunk
    assert partial[-1]["content"] == answer["content"] == "The sum is 3, as computed."
    assert all(len(a["content"]) < len(b["content"]) for a, b in itertools.pairwise(partial))
    first_partial = events.index("messages/partial")
    assert events[first_partial - 1] == "messages/metadata"
    assert events[-1] == "values"
    assert parts[-1].data["messages"][-1] == answer


def test_a_stream_in_tuple_mode_sends_each_chunk_with_its_metadata(daphne, connect, api, llm, every_chunk):
    llm.enqueue(Text("one two three"))
    client = connect(api.key)

    parts = list(client.runs.stream(None, "oai", input=says("Count"), stream_mode="messages-tuple"))

    chunks = [p.data for p in parts if p.event == "messages"]
    assert chunks
    assert "".join(chunk["content"] for chunk, _ in chunks) == "one two three"
    assert {chunk["type"] for chunk, _ in chunks} == {"AIMessageChunk"}
    assert {meta["graph_id"] for _, meta in chunks} == {"oai"}


def test_an_unsupported_stream_mode_is_refused_before_anything_is_written(daphne, connect, api):
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    with pytest.raises(UnprocessableEntityError):
        list(client.runs.stream(tid, "oai", input=says("hi"), stream_mode="debug"))
    assert Run.objects.count() == 0


def test_a_replayed_stream_shows_the_thread_as_it_was_at_each_event(api, llm):
    # Given a run that has finished before its stream reads a single event
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42."))
    status, body = api.post("/api/v1/agents/oai/runs/", {"input": "20 + 22?"})
    assert status == 201, body
    run = Run.objects.select_related("agent").get(pk=body["id"])
    messages = thread_messages(run.session_id)

    # When its stored events are translated, each against the thread as it is now
    parts = Parts(run, ["values"])
    stored = list(RunEvent.objects.filter(run=run).order_by("seq"))
    sent = [part for row in stored for part in parts.step(messages, events.payload(row), final=row == stored[-1])]

    # Then each values part is the thread as it was at that event
    values = [data for name, data in sent if name == "values"]
    kinds = [[m["type"] for m in v["messages"]] for v in values]
    assert kinds == [["human"], ["human", "ai"], ["human", "ai", "tool"], ["human", "ai", "tool", "ai"]]


def test_updates_name_the_node_that_wrote_each_message(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    parts = list(client.runs.stream(tid, "oai", input=says("20 + 22?"), stream_mode="updates"))

    assert parts[0].event == "metadata"
    assert {p.event for p in parts[1:]} == {"updates"}
    updates = [p.data for p in parts[1:]]
    assert [list(update) for update in updates] == [["agent"], ["tools"], ["agent"]]
    written = [update[node]["messages"] for update in updates for node in update]
    assert all(len(messages) == 1 for messages in written)
    assert written[0][0]["tool_calls"][0]["args"] == {"a": 20, "b": 22}
    # each update is a message of the thread, in order (the human input is not a node's)
    assert [messages[0] for messages in written] == client.threads.get_state(tid)["values"]["messages"][1:]


def test_a_pause_for_approval_ends_the_updates_with_the_interrupt(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]

    parts = list(client.runs.stream(tid, "oai", input=says("Email Ann"), stream_mode="updates"))

    assert [list(p.data) for p in parts[1:]] == [["agent"], ["__interrupt__"]]
    (interrupt,) = parts[-1].data["__interrupt__"]
    assert interrupt == client.threads.get_state(tid)["interrupts"][0]
    assert interrupt["value"]["arguments"] == {"to": "ann@example.com", "subject": "Hi"}


def test_events_follow_the_model_and_the_tools_as_astream_events_does(daphne, connect, api, llm, every_chunk):
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("The sum is 3, as computed."))
    client = connect(api.key)

    parts = list(client.runs.stream(None, "oai", input=says("1 + 2?"), stream_mode="events"))

    run_id = parts[0].data["run_id"]
    assert {p.event for p in parts[1:]} == {"events"}
    shown = [p.data for p in parts[1:]]
    kinds = [k for k, _ in itertools.groupby(e["event"] for e in shown)]
    assert kinds == [
        "on_chain_start",
        "on_chat_model_start",
        "on_chat_model_end",  # the tool call
        "on_tool_start",
        "on_tool_end",
        "on_chat_model_start",
        "on_chat_model_stream",  # the answer, chunk by chunk
        "on_chat_model_end",
        "on_chain_end",
    ]
    graph, end = shown[0], shown[-1]
    assert (graph["name"], graph["run_id"], graph["parent_ids"]) == ("LangGraph", run_id, [])
    assert graph["data"]["input"]["messages"][0]["content"] == "1 + 2?"
    assert end["data"]["output"]["messages"][-1]["content"] == "The sum is 3, as computed."
    assert end["data"]["output"] == client.threads.get_state(end["metadata"]["thread_id"])["values"]
    tool_start, tool_end = (next(e for e in shown if e["event"] == kind) for kind in ("on_tool_start", "on_tool_end"))
    assert (tool_start["name"], tool_start["data"]["input"]) == ("add", {"a": 1, "b": 2})
    assert tool_end["run_id"] == tool_start["run_id"]
    assert tool_end["data"]["output"]["type"] == "tool"
    answer = [e for e in shown if e["event"].startswith("on_chat_model")][-1]
    model_call = [e for e in shown if e["run_id"] == answer["run_id"]]
    assert model_call[0]["event"] == "on_chat_model_start"
    assert {e["parent_ids"][0] for e in model_call} == {run_id}
    chunks = [e["data"]["chunk"]["content"] for e in model_call if e["event"] == "on_chat_model_stream"]
    assert chunks
    assert "".join(chunks) == answer["data"]["output"]["content"]


def test_join_stream_replays_a_run_and_resumes_after_an_event_id(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    modes = ["values", "updates"]
    streamed = list(client.runs.stream(tid, "oai", input=says("20 + 22?"), stream_mode=modes))
    rid = streamed[0].data["run_id"]

    joined = list(client.runs.join_stream(tid, rid, stream_mode=modes))

    assert joined == streamed  # the same parts, with the same ids
    assert joined[0].event == "metadata"
    parts = joined[1:]
    ids = [part.id for part in parts]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    for cut in (0, len(parts) // 2, len(parts) - 1):
        resumed = list(client.runs.join_stream(tid, rid, stream_mode=modes, last_event_id=parts[cut].id))
        assert resumed == parts[cut + 1 :]  # without the metadata part, which the client had first


def test_a_streamed_run_says_where_to_resume_it(daphne, connect, api, llm):
    # Given a streamed run, read as a client that loses the connection after the first parts
    llm.enqueue(Text("Hello there."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    body = {"assistant_id": "oai", "input": says("Hi"), "stream_mode": ["messages-tuple", "values"]}
    headers = {"x-api-key": api.key}
    with httpx.stream("POST", f"{lg_url(daphne)}/threads/{tid}/runs/stream", json=body, headers=headers) as response:
        location = response.headers["location"]
        rid = response.headers["content-location"].rsplit("/", 1)[1]
        first = [line for line in itertools.islice(response.iter_lines(), 12) if line.startswith("id: ")]

    # When it reconnects where the stream's Location says, after the last id it had
    assert location == f"/threads/{tid}/runs/{rid}/stream?stream_mode=messages-tuple&stream_mode=values"
    modes = httpx.URL(location).params.get_list("stream_mode")
    resumed = list(client.runs.join_stream(tid, rid, stream_mode=modes, last_event_id=first[-1][4:]))

    # Then it gets the rest of the run's stream, in the modes it asked for
    everything = list(client.runs.join_stream(tid, rid, stream_mode=["messages-tuple", "values"]))
    cut = [part.id for part in everything].index(first[-1][4:])
    assert resumed == everything[cut + 1 :]
    assert resumed[-1].event == "values"
    assert resumed[-1].data["messages"][-1]["content"] == "Hello there."


def test_join_stream_follows_a_background_run_as_it_goes(daphne, connect, api, llm):
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]), Text("Through the gate."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "oai", input=says("Wait at the gate"))

    parts = []
    for part in client.runs.join_stream(tid, run["run_id"], stream_mode="updates"):
        parts.append(part)
        if "agent" in part.data and part.data["agent"]["messages"][0]["tool_calls"]:
            sample_agents.GATE.set()  # the rest of the run happens while the stream follows it

    assert [part.event for part in parts] == ["metadata", "updates", "updates", "updates"]
    assert [list(part.data) for part in parts[1:]] == [["agent"], ["tools"], ["agent"]]
    assert parts[-1].data["agent"]["messages"][0]["content"] == "Through the gate."
    assert client.runs.get(tid, run["run_id"])["status"] == "success"


def test_a_joined_stream_is_refused_to_another_owner_and_for_bad_input(daphne, connect, api, make_api, llm):
    llm.enqueue(Text("Mine."))
    client = connect(api.key)
    tid = client.threads.create()["thread_id"]
    rid = client.runs.create(tid, "oai", input=says("Hi"))["run_id"]
    client.runs.join(tid, rid)

    with pytest.raises(NotFoundError):
        list(connect(make_api("bob").key).runs.join_stream(tid, rid))
    for bad in ({"last_event_id": "not-an-id"}, {"stream_mode": "debug"}, {"cancel_on_disconnect": True}):
        with pytest.raises(UnprocessableEntityError):
            list(client.runs.join_stream(tid, rid, **bad))


def test_a_streamed_resume_sends_what_the_run_does_after_the_decision(daphne, connect, make_api, llm):
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]), Text("Sent."))
    client = connect(make_api("rita", scopes=["approvals:decide"]).key)
    tid = client.threads.create()["thread_id"]
    paused = list(client.runs.stream(tid, "oai", input=says("Email Ann"), stream_mode="updates"))

    resumed = list(client.runs.stream(tid, "oai", command=Command(resume={"approved": True}), stream_mode=["updates"]))

    assert resumed[0].event == "metadata"
    assert resumed[0].data["run_id"] == paused[0].data["run_id"]  # the same run, going on
    assert [list(part.data) for part in resumed[1:]] == [["tools"], ["agent"]]
    assert resumed[-1].data["agent"]["messages"][0]["content"] == "Sent."
    # joined from the start, the run's stream has both halves, the pause in between
    joined = list(client.runs.join_stream(tid, paused[0].data["run_id"], stream_mode="updates"))
    assert joined == paused + resumed[1:]


def test_joining_a_resumed_run_waits_for_its_end_not_its_pause(daphne, connect, make_api, llm):
    # Given a run paused for approval, then resumed (its answer takes a second)
    llm.enqueue(ToolCalls([Call("send_email", {"to": "ann@example.com", "subject": "Hi"})]), Delay(1.0, Text("Sent.")))
    client = connect(make_api("rita", scopes=["approvals:decide"]).key)
    tid = client.threads.create()["thread_id"]
    paused = list(client.runs.stream(tid, "oai", input=says("Email Ann"), stream_mode="updates"))
    rid = paused[0].data["run_id"]
    client.runs.create(tid, "oai", command=Command(resume={"approved": True}))

    # When the client joins the run while the model answers
    values = client.runs.join(tid, rid)

    # Then the join answers once the run has finished (the pause's signal was withdrawn)
    assert values["messages"][-1]["content"] == "Sent."
    assert client.runs.get(tid, rid)["status"] == "success"
