"""The answer streams as message.delta events, from each provider's streaming API."""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient

from agents.models import RunEvent
from tests.fakes.llm_server import Call, Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def every_chunk(settings):
    """Store each chunk as soon as it comes (by default, chunks within DELTA_INTERVAL are joined;
    chunks that arrive while the one before is being written are always joined)."""
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "DELTA_INTERVAL": 0.0}


def _events(run_id: str) -> list[tuple[str, dict]]:
    return list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("type", "data"))


@pytest.mark.parametrize("agent", ["oai", "claude"])
def test_the_answer_arrives_in_deltas_before_the_completed_message(api, llm, every_chunk, agent):
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42, as computed."))

    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "20+22?"})

    assert (status, run["status"]) == (201, "completed")
    assert all(request.body.get("stream") is True for request in llm.requests)
    events = _events(run["id"])
    kinds = [kind for kind, _ in events]
    deltas = [data["text"] for kind, data in events if kind == "message.delta"]
    assert kinds[:3] == ["run.started", "tool.call.started", "tool.call.completed"]
    assert kinds[3:] == ["message.delta"] * len(deltas) + ["message.completed", "run.completed"]
    assert 1 <= len(deltas) <= 3  # the fake server sends the text in three chunks (some may be joined)
    assert "".join(deltas) == run["output"] == "The sum is 42, as computed."
    # the tool call's arguments, streamed in pieces too, were put back together
    assert events[1][1]["arguments"] == {"a": 20, "b": 22}
    assert events[2][1]["result"] == "42"
    assert run["usage"]["output_tokens"] > 0


def test_with_streaming_off_the_model_is_not_streamed_and_there_are_no_deltas(api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "STREAM_DELTAS": False}
    llm.enqueue(Text("plain"))

    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "hi"})

    assert "stream" not in llm.requests[0].body
    assert [kind for kind, _ in _events(run["id"])] == ["run.started", "message.completed", "run.completed"]


def test_with_streaming_off_a_tool_call_and_the_usage_come_from_the_whole_response(api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "STREAM_DELTAS": False}
    llm.enqueue(
        ToolCalls([Call("add", {"a": 1, "b": 2})], input_tokens=11, output_tokens=3),
        Text("3", input_tokens=17, output_tokens=1),
    )

    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "1+2?"})

    assert run["status"] == "completed", run
    assert run["output"] == "3"
    assert run["usage"] == {"input_tokens": 28, "output_tokens": 4, "total_tokens": 32}
    events = _events(run["id"])
    assert events[1] == ("tool.call.started", {**events[1][1], "name": "add", "arguments": {"a": 1, "b": 2}})
    assert events[2][1]["result"] == "3"


def test_a_stream_mode_request_carries_the_deltas(api, llm, every_chunk):
    llm.enqueue(Text("one two three"))

    async def post() -> str:
        response = await AsyncClient().post(
            "/api/v1/agents/oai/runs/",
            data={"input": "count", "stream": True},
            content_type="application/json",
            headers={"Authorization": f"Bearer {api.key}", "Accept": "text/event-stream"},
        )
        return b"".join([chunk async for chunk in response.streaming_content]).decode()  # type: ignore[attr-defined]

    body = asyncio.run(post())

    kinds = [line.removeprefix("event: ") for line in body.splitlines() if line.startswith("event: ")]
    deltas = kinds.count("message.delta")
    assert 1 <= deltas <= 3
    assert kinds == ["run.started", *["message.delta"] * deltas, "message.completed", "run.completed"]
