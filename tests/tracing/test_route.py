"""Spans from other processes reach the store through the Redis route and the span sink:
a request to a traced Daphne process and the run a worker executes for it are one trace."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import httpx
import httpx2
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from websockets.sync.client import connect

from agentplatform.sdk import attributes as attr
from tests.fakes.llm_server import Call, Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TASK = "celery.task agents.execute_run"


def _post(base: str, key: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, json.loads(response.read())


def test_a_request_to_another_process_and_its_run_are_one_trace(tracing_on, sink, traced_daphne, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))
    base = traced_daphne.url.replace("ws://", "http://", 1)

    # When a client runs the agent through the Daphne process (a worker in this process runs it)
    status, run = _post(base, api.key, "/api/v1/agents/oai/runs/", {"input": "2+3?"})
    assert (status, run["status"]) == (201, "completed")

    # Then the request's span, routed through Redis, is the parent of the worker's spans
    trace = tracing_on.trace_of(run["id"], {"POST api/v1/agents/<slug:agent>/runs/", TASK, "agent.run"})
    request = next(span for span in trace.spans if span.kind == "server")
    task = next(span for span in trace.spans if span.name == TASK)
    assert request.parent_span_id == ""
    assert task.parent_span_id == request.span_id
    assert request.attributes["http.status_code"] == 201
    assert sink.stats.inserted >= 1  # the request's span came through the sink


def test_a_websocket_message_and_the_run_it_starts_are_one_trace(tracing_on, sink, traced_daphne, api, llm):
    llm.enqueue(Text("hello"))
    _, session = api.post("/api/v1/sessions/", {"agent": "oai"})
    url = f"{traced_daphne.url}/ws/sessions/{session['id']}/"

    with connect(url, additional_headers={"Authorization": f"Bearer {api.key}"}) as socket:
        assert json.loads(socket.recv(timeout=20))["type"] == "session.ready"
        socket.send(json.dumps({"type": "run", "input": "hi", "id": "r1"}))
        accepted = json.loads(socket.recv(timeout=20))
        while json.loads(socket.recv(timeout=20))["type"] != "run.completed":
            pass

    trace = tracing_on.trace_of(accepted["run_id"], {"websocket run", TASK, "agent.run"})
    message = next(span for span in trace.spans if span.name == "websocket run")
    task = next(span for span in trace.spans if span.name == TASK)
    assert message.parent_span_id == ""
    assert message.attributes[attr.SESSION_ID] == session["id"]
    assert task.parent_span_id == message.span_id


def test_a_tool_call_to_the_mcp_server_and_its_run_are_one_trace(tracing_on, sink, traced_daphne, api, llm):
    llm.enqueue(Text("Paris is sunny."))
    url = traced_daphne.url.replace("ws://", "http://", 1) + "/mcp"

    async def call() -> dict:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {api.key}"}, timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return (await session.call_tool("oai", {"input": "Weather in Paris?"})).structured_content

    # When an MCP client calls the agent's tool (the MCP server is an ASGI app beside Django)
    answered = asyncio.run(call())
    assert answered["answer"] == "Paris is sunny."

    # Then the MCP SDK's server span for the call (it continues the client's trace, sent in
    # the message's _meta) is the parent of the run's spans: one trace from client to model
    trace = tracing_on.trace_of(answered["run_id"], {"tools/call oai", TASK, "agent.run"})
    task = next(span for span in trace.spans if span.name == TASK)
    call_span = next(span for span in trace.spans if span.span_id == task.parent_span_id)
    assert (call_span.name, call_span.kind) == ("tools/call oai", "server")
    client_span = next(span for span in trace.spans if span.span_id == call_span.parent_span_id)
    assert (client_span.kind, client_span.parent_span_id) == ("client", "")


def test_a_message_to_an_a2a_agent_and_its_run_are_one_trace(tracing_on, sink, traced_daphne, api, llm):
    llm.enqueue(Text("Paris is sunny."))
    base = traced_daphne.url.replace("ws://", "http://", 1) + "/a2a/oai"

    async def send() -> a2a.Task:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api.key}"}, timeout=60) as http:
            card = await A2ACardResolver(http, base).get_agent_card()
            client = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)
            said = a2a.Message(message_id="m1", role=a2a.ROLE_USER, parts=[a2a.Part(text="Weather in Paris?")])
            (response,) = [r async for r in client.send_message(a2a.SendMessageRequest(message=said))]
            await client.close()
            return response.task

    # When an A2A client sends the agent a message (the A2A endpoints are an ASGI app beside Django)
    task = asyncio.run(send())

    # Then the request's span is the root of the trace the run's spans are in (the A2A SDK's
    # dispatcher spans in between), with the response's status: the task is the run
    trace = tracing_on.trace_of(task.id, {"POST /a2a/oai/", TASK, "agent.run"})
    by_id = {span.span_id: span for span in trace.spans}
    ancestor = next(span for span in trace.spans if span.name == TASK)
    while ancestor.parent_span_id:
        ancestor = by_id[ancestor.parent_span_id]
    assert (ancestor.name, ancestor.kind) == ("POST /a2a/oai/", "server")
    assert ancestor.attributes["http.status_code"] == 200
