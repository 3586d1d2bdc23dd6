"""The MCP server, end to end: the official `mcp` client against a real Daphne process, the
in-process worker and the fake model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx2
import mcp_types as types
import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agents.models import ApiKey, Run, RunStatus, Session
from approvals.models import ApprovalRequest
from tests import sample_agents
from tests.conftest import serving_daphne
from tests.factories import agent_row
from tests.fakes.llm_server import Call, Error, Text, ToolCalls
from tests.infra import database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = {"to": "ann@example.com", "subject": "Hi"}
T = TypeVar("T")
REQUESTS = 6


def _url(daphne: Any) -> str:
    return daphne.url.replace("ws://", "http://") + "/mcp"


def _with_session(daphne: Any, key: str | None, use: Callable[[ClientSession], Awaitable[T]]) -> T:
    """`use(session)` on an initialized MCP client session with the key as a bearer token."""

    async def main() -> T:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(_url(daphne), http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await use(session)

    return asyncio.run(main())


def _call(daphne: Any, key: str, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    async def call(session: ClientSession) -> types.CallToolResult:
        return await session.call_tool(name, arguments)

    return _with_session(daphne, key, call)


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    return [leaf for e in group.exceptions for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])]


def _sse_message(response: httpx2.Response) -> Any:
    """The JSON-RPC message of a response sent as Server-Sent Events."""
    assert response.headers["content-type"].startswith("text/event-stream")
    return json.loads(next(line[5:] for line in response.text.splitlines() if line.startswith("data:")))


def _texts(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


def test_the_tools_are_the_agents_the_key_may_use(daphne, api, make_api):
    async def names(session: ClientSession) -> dict[str, types.Tool]:
        return {tool.name: tool for tool in (await session.list_tools()).tools}

    tools = _with_session(daphne, api.key, names)
    limited = _with_session(daphne, make_api("carol", agents=[agent_row("calc")]).key, names)

    assert {"oai", "claude", "calc", "mailer"} <= set(tools)
    oai = tools["oai"]
    assert oai.description == "Be brief."  # its instructions, as it has no description
    assert oai.input_schema["required"] == ["input"]
    assert set(oai.input_schema["properties"]) == {"input", "session_id"}
    assert list(limited) == ["calc"]


def test_a_call_answers_and_a_second_call_with_its_session_id_continues_the_session(daphne, api, llm):
    llm.enqueue(Text("Paris is sunny."), Text("You asked about Paris."))

    first = _call(daphne, api.key, "oai", {"input": "Weather in Paris?"})
    session_id = first.structured_content["session_id"]
    second = _call(daphne, api.key, "oai", {"input": "What did I ask?", "session_id": session_id})

    run = Run.objects.earliest("created_at")
    assert first.is_error is False
    assert _texts(first)[0] == "Paris is sunny."
    assert first.structured_content == {
        "status": "completed",
        "answer": "Paris is sunny.",
        "session_id": str(run.session_id),
        "run_id": str(run.pk),
    }
    assert str(run.session_id) in _texts(first)[1]
    assert second.structured_content["answer"] == "You asked about Paris."
    assert second.structured_content["session_id"] == str(run.session_id)
    assert Session.objects.count() == 1
    sent = [m["content"] for m in llm.requests[-1].body["messages"] if m["role"] != "system"]
    assert sent == ["Weather in Paris?", "Paris is sunny.", "What did I ask?"]  # the model saw the history


def test_the_modern_client_lists_and_calls_tools(daphne, api, llm):
    # The SDK's high-level client negotiates the protocol version by itself.
    llm.enqueue(Text("Hello."))

    async def main() -> tuple[str | None, list[str], types.CallToolResult]:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {api.key}"}, timeout=60) as http,
            Client(streamable_http_client(_url(daphne), http_client=http)) as client,
        ):
            tools = await client.list_tools()
            result = await client.call_tool("oai", {"input": "Hi"})
            return client.session.protocol_version, [tool.name for tool in tools.tools], result

    version, names, result = asyncio.run(main())

    assert version in MODERN_PROTOCOL_VERSIONS  # one request per message, no handshake
    assert "oai" in names
    assert result.structured_content["answer"] == "Hello."


def test_a_run_paused_for_approval_says_so_and_names_the_approval(daphne, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))

    result = _call(daphne, api.key, "oai", {"input": "Email Ann"})

    approval = ApprovalRequest.objects.get()
    run = Run.objects.get()
    assert run.status == RunStatus.AWAITING_APPROVAL
    assert result.is_error is False
    assert result.structured_content == {
        "status": "awaiting_approval",
        "session_id": str(run.session_id),
        "run_id": str(run.pk),
        "approval_ids": [str(approval.pk)],
    }
    assert "approval" in _texts(result)[0]
    assert str(approval.pk) in _texts(result)[0]
    assert sample_agents.CALLS == []  # nothing was sent before a reviewer decides


def test_a_failed_run_is_a_tool_error_with_its_code(daphne, api, llm):
    llm.enqueue(Error(400, "The model refuses."))

    result = _call(daphne, api.key, "oai", {"input": "Hi"})

    assert result.is_error is True
    assert result.structured_content["error"]["code"] == "provider_error"
    assert "The model refuses." in _texts(result)[0]


def test_another_owners_session_is_not_found(daphne, api, make_api, llm):
    # Given a session of alice's
    llm.enqueue(Text("Secret answer."))
    mine = _call(daphne, api.key, "oai", {"input": "My secret"})
    bob = make_api("bob")

    # When bob names it (or something that is no session id)
    theirs = _call(daphne, bob.key, "oai", {"input": "Tell me", "session_id": mine.structured_content["session_id"]})
    garbage = _call(daphne, bob.key, "oai", {"input": "Tell me", "session_id": "not-a-session"})

    # Then both are the same tool error, and nothing of alice's is shown or written
    for result in (theirs, garbage):
        assert result.is_error is True
        assert result.structured_content["error"]["code"] == "session_not_found"
        assert "Secret" not in json.dumps(result.model_dump())
    assert Run.objects.count() == 1


def test_an_unknown_tool_and_missing_input_are_protocol_errors(daphne, api, make_api):
    limited = make_api("carol", agents=[agent_row("calc")]).key

    async def calls(session: ClientSession) -> list[int]:
        codes = []
        for name, arguments in (("oai", {"input": "Hi"}), ("calc", {})):
            with pytest.raises(MCPError) as refused:
                await session.call_tool(name, arguments)
            codes.append(refused.value.error.code)
        return codes

    assert _with_session(daphne, limited, calls) == [types.INVALID_PARAMS, types.INVALID_PARAMS]
    assert not Run.objects.exists()


@pytest.mark.parametrize("key", [None, "ap_not-a-key", "not even the prefix"])
def test_a_missing_or_bad_key_is_refused_before_any_mcp_message(daphne, key):
    async def nothing(session: ClientSession) -> None:
        raise AssertionError("connected without a valid key")

    # The client raises the error the server answered its first message with
    with pytest.RaisesGroup(pytest.RaisesExc(MCPError), flatten_subgroups=True) as refused:
        _with_session(daphne, key, nothing)
    response = httpx2.post(
        _url(daphne),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {key}"} if key else {},
    )

    (error,) = _leaves(refused.value)
    assert isinstance(error, MCPError)
    assert error.error.data == {"code": "invalid_api_key"}
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["message"] == error.error.message


@pytest.fixture
def fresh_counters() -> Iterator[None]:
    """Key ids are reused once the database is reset: no rate-limit counter outlives a test."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)

    def forget() -> None:
        for key in client.scan_iter("agentplatform:limits:*"):
            client.delete(key)

    forget()
    yield
    forget()


def test_the_keys_limits_are_a_tool_error_for_runs_and_429_for_requests(daphne, api, llm, fresh_counters):
    # Given a key that may start one run a minute
    ApiKey.objects.update(runs_per_minute=1)
    llm.enqueue(Text("Hello."))

    # When it calls twice
    first = _call(daphne, api.key, "oai", {"input": "Hi"})
    second = _call(daphne, api.key, "oai", {"input": "Hi again"})

    # Then the second is refused with when to come back, and nothing is written
    assert first.is_error is False
    assert second.is_error is True
    error = second.structured_content["error"]
    assert (error["code"], error["details"]["limit"]) == ("rate_limited", "runs_per_minute")
    assert 1 <= error["details"]["retry_after"] <= 61
    assert "Retry after" in _texts(second)[0]
    assert Run.objects.count() == 1

    # And past its requests per minute, an HTTP request is refused 429 before MCP reads it
    ApiKey.objects.update(requests_per_minute=1)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {api.key}", "Accept": "application/json, text/event-stream"}
    statuses = [httpx2.post(_url(daphne), json=listing, headers=headers) for _ in range(2)]
    assert [r.status_code for r in statuses] == [200, 429]
    assert int(statuses[1].headers["Retry-After"]) >= 1
    assert statuses[1].headers["RateLimit-Limit"] == "1"
    assert statuses[1].json()["error"]["data"] == {"code": "rate_limited"}


def test_a_host_not_allowed_is_refused(daphne, api):
    response = httpx2.post(
        _url(daphne),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": f"Bearer {api.key}", "Host": "attacker.example"},
    )

    assert response.status_code == 400


@pytest.mark.skipif(connection.vendor != "postgresql", reason="blocks reads with a PostgreSQL table lock")
def test_past_the_web_tiers_limit_a_request_is_refused_503_with_retry_after(api, tmp_path):
    # Given a web process with one thread and room for one more request, whose reads of
    # agents block in the database (a table lock held elsewhere)
    settings = {"AGENTPLATFORM_WEB_THREADS": "1", "AGENTPLATFORM_WEB_QUEUE": "1"}
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Authorization": f"Bearer {api.key}", "Accept": "application/json, text/event-stream"}
    with serving_daphne(tmp_path / "daphne.log", **settings) as daphne:

        async def flood() -> tuple[list[httpx2.Response], list[httpx2.Response]]:
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
                with psycopg.connect(database_url(connection.settings_dict)) as lock:
                    lock.execute("LOCK TABLE agents_agent IN ACCESS EXCLUSIVE MODE")
                    calls = [asyncio.create_task(http.post(_url(daphne), json=listing)) for _ in range(REQUESTS)]
                    # When more requests come than it can serve or let wait: the others are answered at once
                    await asyncio.to_thread(wait_until, lambda: sum(c.done() for c in calls) == REQUESTS - 2, 30)
                    early = [c.result() for c in calls if c.done()]
                    lock.commit()
                return early, list(await asyncio.gather(*calls))

        early, responses = asyncio.run(flood())

    # Then those are 503 with Retry-After and the platform's code, and the two admitted are served
    assert [r.status_code for r in early] == [503] * (REQUESTS - 2)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in early)
    assert {r.json()["error"]["data"]["code"] for r in early} == {"overloaded"}
    served = [r for r in responses if r.status_code == 200]
    assert len(served) == 2
    assert all("oai" in {tool["name"] for tool in _sse_message(r)["result"]["tools"]} for r in served)
