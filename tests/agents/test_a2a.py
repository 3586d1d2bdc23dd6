"""A2A, end to end: the official `a2a-sdk` client against a real Daphne process, the
in-process worker and the fake model. A task is a run; its context is the run's session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import uuid4

import httpx
import psycopg
import pytest
from a2a.client import A2ACardResolver, AgentCardResolutionError, Client, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import InvalidParamsError, TaskNotCancelableError, TaskNotFoundError
from django.db import connection

from agents.models import Run, RunStatus
from approvals.models import ApprovalRequest
from tests import sample_agents
from tests.conftest import serving_daphne
from tests.factories import agent_row
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import database_url, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
EMAIL = {"to": "ann@example.com", "subject": "Hi"}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def base(daphne: Any, agent: str) -> str:
    return daphne.url.replace("ws://", "http://") + f"/a2a/{agent}"


@contextlib.asynccontextmanager
async def connected(
    daphne: Any, key: str, agent: str, *, streaming: bool = False, version: str | None = None
) -> AsyncIterator[Client]:
    """An A2A client made from the agent's card (fetched with the key), sending the key;
    `version` keeps only the card's interface of that protocol version."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        card = await A2ACardResolver(http, base(daphne, agent)).get_agent_card()
        if version is not None:
            kept = [i for i in card.supported_interfaces if i.protocol_version == version]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(kept)
        client = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming)).create(card)
        yield client
        await client.close()


def message(text: str, context_id: str = "") -> a2a.SendMessageRequest:
    said = a2a.Message(message_id=uuid4().hex, role=a2a.ROLE_USER, parts=[a2a.Part(text=text)], context_id=context_id)
    return a2a.SendMessageRequest(message=said)


async def send(client: Client, request: a2a.SendMessageRequest) -> list[a2a.StreamResponse]:
    return [response async for response in client.send_message(request)]


def send_one(daphne: Any, key: str, agent: str, text: str, context_id: str = "", **options: Any) -> a2a.Task:
    async def go() -> a2a.Task:
        async with connected(daphne, key, agent, **options) as client:
            (response,) = await send(client, message(text, context_id))
            return response.task

    return run(go())


def call(daphne: Any, key: str, agent: str, method: Callable[[Client], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        async with connected(daphne, key, agent) as client:
            return await method(client)

    return run(go())


def test_the_card_names_the_agents_endpoint_and_a_bearer_key(daphne, api, make_api):
    async def card(key: str, agent: str) -> a2a.AgentCard:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            return await A2ACardResolver(http, base(daphne, agent)).get_agent_card()

    got = run(card(api.key, "calc"))

    assert got.name == "calc"
    endpoint = base(daphne, "calc") + "/"
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in got.supported_interfaces] == [
        (endpoint, "JSONRPC", "1.0"),
        (endpoint, "JSONRPC", "0.3"),
    ]
    assert got.capabilities.streaming
    assert got.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert list(got.security_requirements[0].schemes) == ["bearer"]
    limited = make_api("carol", agents=[agent_row("calc")]).key
    assert run(card(limited, "calc")).name == "calc"
    with pytest.raises(AgentCardResolutionError) as hidden:
        run(card(limited, "oai"))  # an agent the key may not use has no card for it
    assert hidden.value.status_code == 404


def test_a_bad_key_is_refused_with_401_before_any_json_rpc(daphne, api):
    with pytest.raises(AgentCardResolutionError) as refused:
        send_one(daphne, "ap_not-a-key", "calc", "1+1")
    assert refused.value.status_code == 401
    response = httpx.post(
        base(daphne, "calc") + "/",
        json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}},
        headers={"Authorization": "Bearer ap_not-a-key"},
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(base(daphne, "calc") + "/.well-known/agent-card.json").status_code == 401
    assert not Run.objects.exists()


def test_message_send_answers_with_the_completed_task_and_its_context_continues_the_session(daphne, api, llm):
    llm.enqueue(Text("Paris is sunny."), Text("Still sunny."))

    first = send_one(daphne, api.key, "oai", "Weather in Paris?")

    assert first.status.state == a2a.TASK_STATE_COMPLETED
    assert [part.text for part in first.artifacts[0].parts] == ["Paris is sunny."]
    assert [(m.role, m.parts[0].text) for m in first.history] == [
        (a2a.ROLE_USER, "Weather in Paris?"),
        (a2a.ROLE_AGENT, "Paris is sunny."),
    ]
    stored = Run.objects.get(pk=first.id)
    assert (str(stored.session_id), stored.status) == (first.context_id, RunStatus.COMPLETED)

    second = send_one(daphne, api.key, "oai", "And tomorrow?", context_id=first.context_id)

    assert (second.context_id, second.artifacts[0].parts[0].text) == (first.context_id, "Still sunny.")
    said = [m["content"] for m in llm.requests[-1].body["messages"] if m["role"] in ("user", "assistant")]
    assert said == ["Weather in Paris?", "Paris is sunny.", "And tomorrow?"]


def test_message_stream_sends_the_task_then_its_updates_in_order(daphne, api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "DELTA_INTERVAL": 0.0}
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42, as computed."))

    async def go() -> list[a2a.StreamResponse]:
        async with connected(daphne, api.key, "oai", streaming=True) as client:
            return await send(client, message("20 + 22?"))

    events = run(go())

    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[:2] == ["task", "status_update"]
    assert events[0].task.status.state == a2a.TASK_STATE_SUBMITTED
    assert events[1].status_update.status.state == a2a.TASK_STATE_WORKING
    artifacts = [e.artifact_update for e in events if e.HasField("artifact_update")]
    chunks = [a.artifact.parts[0].text for a in artifacts if not a.last_chunk]
    assert "".join(chunks) == "The sum is 42, as computed."
    assert [a.append for a in artifacts[:-1]] == [False] + [True] * (len(artifacts) - 2)
    assert (artifacts[-1].last_chunk, artifacts[-1].append) == (True, False)
    assert artifacts[-1].artifact.parts[0].text == "The sum is 42, as computed."
    assert kinds[-2:] == ["artifact_update", "status_update"]
    assert events[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED
    task_id = events[0].task.id
    assert {e.status_update.task_id for e in events if e.HasField("status_update")} == {task_id}
    got = call(daphne, api.key, "oai", lambda client: client.get_task(a2a.GetTaskRequest(id=task_id)))
    assert got.artifacts[0].parts[0].text == "The sum is 42, as computed."  # what was streamed is what is read


def test_the_0_3_protocol_methods_answer_on_the_same_endpoint(daphne, api, llm):
    llm.enqueue(Text("Hello from 0.3."))

    task = send_one(daphne, api.key, "oai", "Hi", version="0.3")  # message/send, tasks/get

    assert (task.status.state, task.artifacts[0].parts[0].text) == (a2a.TASK_STATE_COMPLETED, "Hello from 0.3.")

    async def read(client: Client) -> a2a.Task:
        return await client.get_task(a2a.GetTaskRequest(id=task.id))

    async def go() -> a2a.Task:
        async with connected(daphne, api.key, "oai", version="0.3") as client:
            return await read(client)

    assert run(go()).status.state == a2a.TASK_STATE_COMPLETED


def test_a_running_task_is_cancelled_and_a_finished_one_is_not_cancelable(daphne, api, llm):
    sample_agents.GATE.clear()
    llm.enqueue(ToolCalls([Call("wait_at_gate", {})]))  # a second model call would be a failure to cancel

    async def go() -> tuple[a2a.Task, a2a.Task]:
        async with connected(daphne, api.key, "oai") as client:
            request = message("wait")
            request.configuration.return_immediately = True
            (started,) = await send(client, request)
            await asyncio.to_thread(wait_until, lambda: ("wait_at_gate", {}) in sample_agents.CALLS)
            cancelling = await client.cancel_task(a2a.CancelTaskRequest(id=started.task.id))
            sample_agents.GATE.set()
            await asyncio.to_thread(wait_until, lambda: Run.objects.get(pk=started.task.id).status != "running")
            return cancelling, await client.get_task(a2a.GetTaskRequest(id=started.task.id))

    cancelling, cancelled = run(go())

    assert cancelling.status.state == a2a.TASK_STATE_WORKING  # it stops at its next step
    assert cancelled.status.state == a2a.TASK_STATE_CANCELED
    assert len(llm.requests) == 1
    with pytest.raises(TaskNotCancelableError):
        call(daphne, api.key, "oai", lambda client: client.cancel_task(a2a.CancelTaskRequest(id=cancelled.id)))


def test_a_call_waiting_for_approval_is_an_input_required_task_naming_the_approval(daphne, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))

    task = send_one(daphne, api.key, "oai", "Email Ann")

    assert task.status.state == a2a.TASK_STATE_INPUT_REQUIRED
    approval = ApprovalRequest.objects.get(run_id=task.id)
    assert str(approval.pk) in task.status.message.parts[0].text
    assert list(task.status.message.metadata["approval_ids"]) == [str(approval.pk)]
    assert sample_agents.CALLS == []


def test_another_owners_task_is_not_found(daphne, api, make_api, llm):
    llm.enqueue(Text("Mine."))
    mine = send_one(daphne, api.key, "oai", "Hi")
    bob = make_api("bob").key

    for method in (
        lambda client: client.get_task(a2a.GetTaskRequest(id=mine.id)),
        lambda client: client.cancel_task(a2a.CancelTaskRequest(id=mine.id)),
    ):
        with pytest.raises(TaskNotFoundError):
            call(daphne, bob, "oai", method)
    with pytest.raises(TaskNotFoundError):  # nor is a task of another agent at this agent's endpoint
        call(daphne, api.key, "calc", lambda client: client.get_task(a2a.GetTaskRequest(id=mine.id)))
    with pytest.raises(InvalidParamsError, match="No session"):  # and another owner's context is not continued
        send_one(daphne, bob, "oai", "Hi", context_id=mine.context_id)
    assert Run.objects.count() == 1


def test_bad_json_rpc_gets_json_rpc_errors_and_writes_nothing(daphne, api):
    def rpc(body: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {api.key}", "A2A-Version": "1.0"}
        response = httpx.post(base(daphne, "calc") + "/", json=body, headers=headers)
        assert response.status_code == 200
        return response.json()["error"]

    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "Nope", "params": {}})["code"] == -32601
    assert rpc({"jsonrpc": "1.0", "id": 1, "method": "GetTask", "params": {}})["code"] == -32600
    no_text = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"url": "https://example.com/x"}]}}
    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": no_text})["code"] == -32602
    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}})["code"] == -32001
    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}})["code"] == -32004
    assert not Run.objects.exists()


def test_bodies_past_the_apis_limits_and_unknown_paths_get_the_platforms_errors(daphne, api):
    headers = {"Authorization": f"Bearer {api.key}"}
    endpoint = base(daphne, "calc") + "/"

    huge = httpx.post(endpoint, content=b'"' + b"x" * 2_000_000 + b'"', headers=headers)
    deep = httpx.post(endpoint, content=b"[" * 100 + b"]" * 100, headers=headers)
    lost = httpx.get(base(daphne, "calc") + "/tasks", headers=headers)

    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "payload_too_large")
    assert (deep.status_code, deep.json()["error"]["code"]) == (400, "json_too_deep")
    assert (lost.status_code, lost.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a table lock holds a request in the database")
def test_a2a_requests_count_among_the_web_processs_admitted_requests(api, tmp_path):
    # Given a web process that admits one request at a time, and an API request that holds that
    # place (it waits in the database for a table lock held elsewhere)
    settings = {"AGENTPLATFORM_WEB_THREADS": "1", "AGENTPLATFORM_WEB_QUEUE": "0"}
    headers = {"Authorization": f"Bearer {api.key}"}
    with serving_daphne(tmp_path / "daphne.log", **settings) as daphne:
        card = base(daphne, "calc") + "/.well-known/agent-card.json"
        sessions = daphne.url.replace("ws://", "http://") + "/api/v1/sessions/"
        with psycopg.connect(database_url(connection.settings_dict)) as lock, ThreadPoolExecutor(1) as pool:
            lock.execute("LOCK TABLE agents_session IN ACCESS EXCLUSIVE MODE")
            held = pool.submit(httpx.get, sessions, headers=headers, timeout=60)

            with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as watch:
                waiting = (
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                wait_until(lambda: watch.execute(waiting).fetchone() == (1,))

            # When an A2A client asks meanwhile
            refused = httpx.get(card, headers=headers)
            lock.commit()
            assert held.result().status_code == 200

        # Then it is refused at once, as the API's clients are: 503 overloaded with Retry-After;
        # and served once the place is free
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "overloaded")
        assert int(refused.headers["Retry-After"]) >= 1
        assert httpx.get(card, headers=headers).status_code == 200
