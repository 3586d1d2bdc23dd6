"""The OpenAI-compatible endpoints, end to end: the official `openai` SDK against a real Daphne
process, the in-process worker and the fake model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
import redis
from django.conf import settings
from openai import OpenAI

from agents.models import ApiKey, Message, Run, RunStatus, Session
from approvals.models import ApprovalRequest
from tests import sample_agents
from tests.factories import agent_row
from tests.fakes.llm_server import Call, Error, Text, ToolCalls
from tests.infra import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = {"to": "ann@example.com", "subject": "Hi"}


def _url(daphne) -> str:
    return daphne.url.replace("ws://", "http://") + "/openai/v1"


@pytest.fixture
def connect(daphne) -> Iterator[Callable[[str], OpenAI]]:
    """OpenAI SDK clients for API keys, on the Daphne process (no retries: each request is
    made once); closed after the test."""
    clients: list[OpenAI] = []

    def connect(key: str) -> OpenAI:
        clients.append(OpenAI(base_url=_url(daphne), api_key=key, max_retries=0))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def every_chunk(settings):
    """The worker stores each chunk of the answer as it comes (not joined with the next)."""
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "DELTA_INTERVAL": 0.0}


def test_models_are_the_agents_the_key_may_use(daphne, connect, api, make_api):
    client = connect(api.key)

    models = client.models.list()

    assert {"oai", "claude", "calc", "mailer"} <= {m.id for m in models}
    oai = client.models.retrieve("oai")
    assert (oai.id, oai.object, oai.owned_by) == ("oai", "model", "agentplatform")
    limited = connect(make_api("carol", agents=[agent_row("calc")]).key)
    assert [m.id for m in limited.models.list()] == ["calc"]
    with pytest.raises(openai.NotFoundError) as refused:
        limited.models.retrieve("oai")
    assert refused.value.code == "model_not_found"


def test_a_chat_completion_answers_the_last_message_with_the_rest_as_history(daphne, connect, api, llm):
    llm.enqueue(Text("You asked about Paris."))
    client = connect(api.key)

    completion = client.chat.completions.create(
        model="oai",
        messages=[
            {"role": "system", "content": "Talk like a pirate."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": [{"type": "text", "text": "Sunny in Paris."}]},
            {"role": "user", "content": [{"type": "text", "text": "What did I ask?"}]},
        ],
    )

    assert completion.object == "chat.completion"
    assert completion.model == "oai"
    assert completion.choices[0].message.content == "You asked about Paris."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        10,
        5,
        15,
    )
    run = Run.objects.get()
    assert completion.id == f"chatcmpl-{run.pk.hex}"
    assert run.input == "What did I ask?"
    # the earlier messages are the new session's history, and the model was given them
    stored = list(Message.objects.filter(session=run.session).order_by("position"))
    assert [(m.role, m.run_id) for m in stored[:4]] == [
        ("user", None),
        ("assistant", None),
        ("tool", None),
        ("assistant", None),
    ]
    assert stored[1].tool_calls == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}]
    assert stored[2].tool_name == "get_weather"
    assert [m.role for m in stored[4:]] == ["user", "assistant"]
    sent = llm.requests[-1].body["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "tool", "assistant", "user"]
    assert "pirate" not in json.dumps(sent)  # the agent's own instructions apply
    assert sample_agents.CALLS == []  # history is not executed again


def test_a_chat_completion_from_an_agent_that_calls_tools(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("get_weather", {"city": "Paris"})]), Text("It is sunny in Paris."))
    client = connect(api.key)

    completion = client.chat.completions.create(model="oai", messages=[{"role": "user", "content": "Weather?"}])

    assert completion.choices[0].message.content == "It is sunny in Paris."
    assert completion.choices[0].message.tool_calls is None  # the agent's tools ran on the server
    assert sample_agents.CALLS == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    assert completion.usage.total_tokens == 30  # both model calls


def test_a_streamed_chat_completion_sends_chunks_then_the_usage(daphne, connect, api, llm, every_chunk):
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 2})]), Text("The sum is 3, as computed."))
    client = connect(api.key)

    chunks = list(
        client.chat.completions.create(
            model="oai",
            messages=[{"role": "user", "content": "1 + 2?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    run = Run.objects.get()
    assert {c.id for c in chunks} == {f"chatcmpl-{run.pk.hex}"}
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks[1:-2]]  # the answer, as it was written
    assert "".join(texts) == "The sum is 3, as computed."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (20, 10)
    assert all(c.usage is None for c in chunks[:-1])


def test_a_chat_completion_of_a_run_paused_for_approval_is_a_conflict_naming_the_approval(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))
    client = connect(api.key)

    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model="oai", messages=[{"role": "user", "content": "Email Ann"}])

    approval = ApprovalRequest.objects.get()
    assert refused.value.code == "approval_required"
    assert str(approval.pk) in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.APIError) as ended:  # streamed: the stream ends with the error
        list(
            client.chat.completions.create(
                model="mailer", messages=[{"role": "user", "content": "bob@example.com"}], stream=True
            )
        )
    assert ended.value.code == "approval_required"
    assert Run.objects.filter(status=RunStatus.AWAITING_APPROVAL).count() == 2


def test_a_failed_run_is_an_error_for_a_chat_completion_and_a_failed_response(daphne, connect, api, llm):
    llm.enqueue(Error(400, "The model refuses."), Error(400, "The model refuses."))
    client = connect(api.key)

    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="oai", messages=[{"role": "user", "content": "Hi"}])
    response = client.responses.create(model="oai", input="Hi")

    assert failed.value.status_code == 502
    assert failed.value.code == "provider_error"
    assert response.status == "failed"
    assert response.error.code == "provider_error"
    assert "The model refuses." in response.error.message


def test_a_response_is_a_run_and_previous_response_id_continues_its_session(daphne, connect, api, llm):
    llm.enqueue(
        ToolCalls([Call("get_weather", {"city": "Paris"})]),
        Text("It is sunny in Paris."),
        Text("You asked about Paris."),
    )
    client = connect(api.key)

    first = client.responses.create(model="oai", input="Weather in Paris?", metadata={"ticket": "T-1"})
    second = client.responses.create(model="oai", input="What did I ask?", previous_response_id=first.id)

    run = Run.objects.get(input="Weather in Paris?")
    assert first.id == f"resp_{run.pk.hex}"
    assert (first.object, first.status, first.model) == ("response", "completed", "oai")
    assert first.metadata == {"ticket": "T-1"}
    assert [item.type for item in first.output] == ["mcp_call", "message"]
    call = first.output[0]
    assert (call.name, json.loads(call.arguments), call.server_label) == (
        "get_weather",
        {"city": "Paris"},
        "agentplatform",
    )
    assert call.output == "sunny in Paris, 21 celsius"
    assert first.output_text == "It is sunny in Paris."
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (20, 10, 30)
    assert client.responses.retrieve(first.id) == first
    # the second response is a run in the same session, and the model saw the first exchange
    assert second.output_text == "You asked about Paris."
    assert second.previous_response_id == first.id
    assert "Weather in Paris?" in json.dumps(llm.requests[-1].body["messages"])
    assert Run.objects.get(input="What did I ask?").session_id == run.session_id
    assert Session.objects.count() == 1


def test_a_response_to_a_list_of_items_takes_the_earlier_ones_as_history(daphne, connect, api, llm):
    llm.enqueue(Text("You asked about Paris."))
    client = connect(api.key)

    response = client.responses.create(
        model="oai",
        instructions="Talk like a pirate.",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny in Paris."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "What did I ask?"}]},
        ],
    )

    assert response.output_text == "You asked about Paris."
    sent = llm.requests[-1].body["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "tool", "assistant", "user"]
    assert "pirate" not in json.dumps(sent)
    assert Run.objects.get().input == "What did I ask?"


def test_a_background_response_is_answered_at_once_and_retrieved_when_done(daphne, connect, api, llm):
    llm.enqueue(Text("Done."))
    client = connect(api.key)

    started = client.responses.create(model="oai", input="Write the report", background=True)
    wait_until(lambda: client.responses.retrieve(started.id).status == "completed", timeout=30)

    assert started.status in ("queued", "in_progress", "completed")
    assert started.background is True
    assert client.responses.retrieve(started.id).output_text == "Done."


def test_a_streamed_response_sends_the_responses_events_in_order(daphne, connect, api, llm, every_chunk):
    llm.enqueue(ToolCalls([Call("add", {"a": 20, "b": 22})]), Text("The sum is 42, as computed."))
    client = connect(api.key)

    events = list(client.responses.create(model="oai", input="20 + 22?", stream=True))

    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    call = [e for e in kinds if "mcp_call" in e or e.startswith("response.output_item")][:4]
    assert call == [
        "response.output_item.added",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.output_item.done",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "The sum is 42, as computed."
    assert kinds.index("response.content_part.added") < kinds.index("response.output_text.delta")
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    final = events[-1].response
    assert final.output_text == "The sum is 42, as computed."
    assert client.responses.retrieve(final.id) == final  # what was streamed is what is read back


def test_an_approval_request_is_answered_with_an_approval_response(daphne, connect, api, make_api, llm):
    # Given a response paused on a CONFIRM call, made with a key that may decide
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]), Text("Sent."))
    reviewer = connect(make_api("rita", scopes=["approvals:decide"]).key)
    paused = reviewer.responses.create(model="oai", input="Email Ann")
    approval = ApprovalRequest.objects.get()

    # When a key without the right tries, then another owner, then the reviewer approves
    (request,) = [item for item in paused.output if item.type == "mcp_approval_request"]
    answer = [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]
    with pytest.raises(openai.NotFoundError):  # another owner's response
        connect(api.key).responses.create(model="oai", input=answer, previous_response_id=paused.id)
    resumed = reviewer.responses.create(model="oai", input=answer, previous_response_id=paused.id)

    # Then the paused response showed the request, and the resumed run answered
    assert paused.status == "completed"
    assert (request.id, request.name, request.server_label) == (str(approval.pk), "send_email", "agentplatform")
    assert json.loads(request.arguments) == EMAIL
    assert resumed.id == paused.id  # the same run, resumed
    assert [item.type for item in resumed.output] == ["mcp_approval_request", "mcp_call", "message"]
    assert resumed.output[1].approval_request_id == request.id
    assert resumed.output[1].output == "sent"
    assert resumed.output_text == "Sent."
    assert sample_agents.CALLS == [("send_email", EMAIL)]
    approval.refresh_from_db()
    assert approval.status == "approved"
    assert approval.decided_by is not None
    assert approval.decided_by.username == "rita"
    assert Run.objects.count() == 1


def test_a_rejected_approval_streams_the_rest_of_the_run(daphne, connect, make_api, llm, every_chunk):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]), Text("I did not send it."))
    client = connect(make_api("rita", scopes=["approvals:decide"]).key)
    paused = client.responses.create(model="oai", input="Email Ann")
    answer = {"type": "mcp_approval_response", "approval_request_id": paused.output[-1].id, "approve": False}

    with client.responses.stream(
        model="oai", input=[{**answer, "reason": "Not today."}], previous_response_id=paused.id
    ) as stream:
        final = stream.get_final_response()

    assert [item.type for item in final.output] == ["mcp_approval_request", "mcp_call", "message"]
    assert final.output[1].status == "failed"
    assert "Not today." in json.dumps(final.output[1].error.to_dict())
    assert final.output_text == "I did not send it."
    assert sample_agents.CALLS == []
    approval = ApprovalRequest.objects.get()
    assert (approval.status, approval.reason) == ("rejected", "Not today.")


def _answer(approval_id: str, approve: bool) -> dict:
    return {"type": "mcp_approval_response", "approval_request_id": approval_id, "approve": approve}


def test_answering_some_approval_requests_answers_at_once_with_the_others_pending(daphne, connect, make_api, llm):
    # Given a response paused on two calls
    to_bo = {"to": "bo@example.com", "subject": "Yo"}
    llm.enqueue(ToolCalls([Call("send_email", EMAIL), Call("send_email", to_bo)]), Text("Sent one."))
    client = connect(make_api("rita", scopes=["approvals:decide"]).key)
    paused = client.responses.create(model="oai", input="Email Ann and Bo")
    first, second = [item.id for item in paused.output if item.type == "mcp_approval_request"]

    # When one is answered (streamed), then the other
    with client.responses.stream(model="oai", previous_response_id=paused.id, input=[_answer(first, True)]) as stream:
        partial = stream.get_final_response()
    statuses = sorted(ApprovalRequest.objects.values_list("status", flat=True))
    done = client.responses.create(model="oai", previous_response_id=paused.id, input=[_answer(second, False)])

    # Then the first answer came back at once, the run still paused; the second resumed it
    assert partial.id == paused.id
    assert [item.type for item in partial.output] == ["mcp_approval_request", "mcp_approval_request"]
    assert statuses == ["approved", "pending"]
    kinds = [item.type for item in done.output]
    assert kinds == ["mcp_approval_request", "mcp_approval_request", "mcp_call", "mcp_call", "message"]
    assert [(item.status, item.approval_request_id) for item in done.output[2:4]] == [
        ("completed", first),
        ("failed", second),
    ]
    assert done.output_text == "Sent one."
    assert sample_agents.CALLS == [("send_email", EMAIL)]


def test_deciding_needs_the_right_to_decide(daphne, connect, api, llm):
    llm.enqueue(ToolCalls([Call("send_email", EMAIL)]))
    client = connect(api.key)  # a key without the approvals:decide scope
    paused = client.responses.create(model="oai", input="Email Ann")
    answer = {"type": "mcp_approval_response", "approval_request_id": paused.output[-1].id, "approve": True}

    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="oai", input=[answer], previous_response_id=paused.id)

    assert ApprovalRequest.objects.get().status == "pending"
    with pytest.raises(openai.ConflictError):  # new input waits for the decisions
        client.responses.create(model="oai", input="And now?", previous_response_id=paused.id)


def test_another_owners_response_is_not_found(daphne, connect, api, make_api, llm):
    llm.enqueue(Text("Secret."))
    alice = connect(api.key)
    mine = alice.responses.create(model="oai", input="My secret")
    bob = connect(make_api("bob").key)

    for call in (
        lambda: bob.responses.retrieve(mine.id),
        lambda: bob.responses.cancel(mine.id),
        lambda: bob.responses.create(model="oai", input="Tell me", previous_response_id=mine.id),
    ):
        with pytest.raises(openai.NotFoundError) as refused:
            call()
        assert refused.value.code == "response_not_found"
    assert Run.objects.count() == 1


def test_bad_requests_get_the_sdks_typed_errors_and_write_nothing(daphne, connect, api):
    client = connect(api.key)

    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "hi"}])
    assert (unknown.value.code, unknown.value.param, unknown.value.type) == (
        "model_not_found",
        "model",
        "invalid_request_error",
    )
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-agent", input="hi")
    for messages in (
        [],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],  # nothing to answer
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}],
        [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}],
            },
            {"role": "user", "content": "and now?"},
        ],  # the call was never answered
    ):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="oai", messages=messages)
        assert bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="oai",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert bad.value.param == "tools"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(input="no model")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_not-a-run")
    with pytest.raises(openai.AuthenticationError):
        connect("ap_not-a-key").models.list()
    response = httpx.post(
        f"{_url(daphne)}/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "code", "param"}
    response = httpx.get(f"{_url(daphne)}/no-such-endpoint", headers={"Authorization": f"Bearer {api.key}"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert Run.objects.count() == 0
    assert Session.objects.count() == 0


def test_a_key_over_its_request_rate_gets_a_rate_limit_error(daphne, connect, make_api):
    for counter in redis.Redis.from_url(settings.REDIS_URL).scan_iter("agentplatform:limits:*"):
        redis.Redis.from_url(settings.REDIS_URL).delete(counter)  # ids are reused once the database is reset
    key = make_api("rachel").key
    ApiKey.objects.filter(user__username="rachel").update(requests_per_minute=1)
    client = connect(key)
    client.models.list()

    with pytest.raises(openai.RateLimitError) as limited:
        client.models.list()

    assert limited.value.response.headers["Retry-After"]
    assert limited.value.type == "rate_limit_error"
