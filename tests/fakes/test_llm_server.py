"""End-to-end tests of the fake LLM server, driven through the real openai and anthropic SDKs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from anthropic.types import MessageParam, ToolParam, ToolUseBlock
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.fakes.llm_server import (
    Call,
    Delay,
    Error,
    FakeLLMServer,
    RecordedRequest,
    Text,
    ToolCalls,
    one_tool_call_responder,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GPT = "gpt-fake"
CLAUDE = "claude-fake"
OPENAI_USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
CLAUDE_USER: list[MessageParam] = [{"role": "user", "content": "hi"}]
WEATHER_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string"}},
    "required": ["city", "days"],
}
OPENAI_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
}
CLAUDE_TOOL: ToolParam = {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}
TWO_CALLS = ToolCalls(
    [Call("get_weather", {"city": "Paris"}, id="call_given"), Call("get_time", {"tz": "UTC", "n": 2})],
    input_tokens=30,
    output_tokens=7,
)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def gpt(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(server: FakeLLMServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0) as client:
        yield client


def ask_gpt(client: openai.OpenAI) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model=GPT, messages=OPENAI_USER)


def ask_claude(client: anthropic.Anthropic) -> anthropic.types.Message:
    return client.messages.create(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER)


def tool_uses(message: anthropic.types.Message) -> list[ToolUseBlock]:
    return [block for block in message.content if isinstance(block, ToolUseBlock)]


# --- plain JSON replies ----------------------------------------------------------------------


def test_openai_text_reply(server: FakeLLMServer, gpt: openai.OpenAI) -> None:
    server.enqueue(Text("hello", input_tokens=12, output_tokens=3))
    completion = ask_gpt(gpt)
    choice = completion.choices[0]
    assert (choice.message.content, choice.message.tool_calls, choice.finish_reason) == ("hello", None, "stop")
    assert completion.model == GPT
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        12,
        3,
        15,
    )


def test_anthropic_text_reply(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.enqueue(Text("hello", input_tokens=12, output_tokens=3))
    message = ask_claude(claude)
    assert [(block.type, getattr(block, "text", None)) for block in message.content] == [("text", "hello")]
    assert (message.stop_reason, message.model, message.role) == ("end_turn", CLAUDE, "assistant")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 3)


def test_openai_parallel_tool_calls(server: FakeLLMServer, gpt: openai.OpenAI) -> None:
    server.enqueue(TWO_CALLS)
    completion = ask_gpt(gpt)
    message = completion.choices[0].message
    calls = message.tool_calls or []
    assert [call.type for call in calls] == ["function", "function"]
    functions = [call.function for call in calls if call.type == "function"]
    assert [(f.name, json.loads(f.arguments)) for f in functions] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "UTC", "n": 2}),
    ]
    assert calls[0].id == "call_given"
    assert calls[1].id.startswith("call_")
    assert (message.content, completion.choices[0].finish_reason) == (None, "tool_calls")
    assert completion.usage is not None
    assert completion.usage.total_tokens == 37


def test_anthropic_parallel_tool_calls(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.enqueue(ToolCalls([*TWO_CALLS.calls], text="Let me check.", input_tokens=30, output_tokens=7))
    message = ask_claude(claude)
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert getattr(message.content[0], "text", None) == "Let me check."
    uses = tool_uses(message)
    assert [(use.name, use.input) for use in uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "UTC", "n": 2}),
    ]
    assert uses[0].id == "call_given"
    assert uses[1].id.startswith("toolu_")
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 7)


def test_malformed_arguments_are_sent_verbatim(
    server: FakeLLMServer, gpt: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.enqueue(ToolCalls([Call("f", '{"a": ')]), ToolCalls([Call("f", '{"a": ')]))
    call = (ask_gpt(gpt).choices[0].message.tool_calls or [])[0]
    assert call.type == "function"
    assert call.function.arguments == '{"a": '
    # Anthropic has no JSON-text field outside streaming: the unparsable text arrives as `input`.
    raw_input: object = tool_uses(ask_claude(claude))[0].input
    assert raw_input == '{"a": '


# --- streaming -------------------------------------------------------------------------------


def test_openai_stream_helper_text_with_usage(server: FakeLLMServer, gpt: openai.OpenAI) -> None:
    server.enqueue(Text("streamed hello world", input_tokens=4, output_tokens=6))
    with gpt.chat.completions.stream(model=GPT, messages=OPENAI_USER, stream_options={"include_usage": True}) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 1
    assert "".join(deltas) == final.choices[0].message.content == "streamed hello world"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens, final.usage.total_tokens) == (4, 6, 10)


def test_openai_raw_stream_chunks(server: FakeLLMServer, gpt: openai.OpenAI) -> None:
    server.enqueue(Text("abc"), Text("abc"))
    with gpt.chat.completions.create(
        model=GPT, messages=OPENAI_USER, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]] == [None] * (len(chunks) - 2) + ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    with gpt.chat.completions.create(model=GPT, messages=OPENAI_USER, stream=True) as stream:
        assert all(chunk.usage is None and chunk.choices for chunk in stream)


def test_openai_stream_helper_tool_calls(server: FakeLLMServer, gpt: openai.OpenAI) -> None:
    server.enqueue(TWO_CALLS)
    with gpt.chat.completions.stream(
        model=GPT, messages=OPENAI_USER, tools=[OPENAI_TOOL], stream_options={"include_usage": True}
    ) as stream:
        argument_deltas = [event for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [(call.id == "call_given", call.function.name, json.loads(call.function.arguments)) for call in calls] == [
        (True, "get_weather", {"city": "Paris"}),
        (False, "get_time", {"tz": "UTC", "n": 2}),
    ]
    assert calls[1].id.startswith("call_")
    assert len(argument_deltas) > len(calls)  # arguments arrive incrementally
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.total_tokens == 37


def test_anthropic_stream_helper_text(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.enqueue(Text("streamed hello world", input_tokens=4, output_tokens=6))
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == "streamed hello world"
    assert [getattr(block, "text", None) for block in final.content] == ["streamed hello world"]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, 6)


def test_anthropic_stream_helper_tool_calls(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.enqueue(TWO_CALLS)
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER, tools=[CLAUDE_TOOL]) as stream:
        final = stream.get_final_message()
    uses = tool_uses(final)
    assert [(use.name, use.input) for use in uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "UTC", "n": 2}),
    ]
    assert uses[0].id == "call_given"
    assert uses[1].id.startswith("toolu_")
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (30, 7)


def test_anthropic_raw_event_sequence(server: FakeLLMServer, claude: anthropic.Anthropic) -> None:
    server.enqueue(ToolCalls([Call("f", {"k": "v"})], text="hi"))
    with claude.messages.create(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER, stream=True) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
    deltas = [event.delta.type for event in events if event.type == "content_block_delta"]
    assert {"text_delta", "input_json_delta"} == set(deltas)


# --- errors, retries, timeouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
    ],
)
def test_openai_errors(
    server: FakeLLMServer, gpt: openai.OpenAI, status: int, exc_type: type[openai.APIStatusError], error_type: str
) -> None:
    server.enqueue(Error(status, "nope"))
    with pytest.raises(exc_type) as info:
        ask_gpt(gpt)
    assert info.value.status_code == status
    assert info.value.type == error_type
    assert info.value.body == {"message": "nope", "type": error_type, "param": None, "code": info.value.code}
    assert info.value.request_id is not None


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_anthropic_errors(
    server: FakeLLMServer,
    claude: anthropic.Anthropic,
    status: int,
    exc_type: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    server.enqueue(Error(status, "nope"))
    with pytest.raises(exc_type) as info:
        ask_claude(claude)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "error"
    assert info.value.body["error"] == {"type": error_type, "message": "nope"}
    assert info.value.request_id is not None


def test_error_on_streaming_request_is_plain_http_error(
    server: FakeLLMServer, gpt: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.enqueue(Error(429), Error(500))
    with pytest.raises(openai.RateLimitError):
        gpt.chat.completions.create(model=GPT, messages=OPENAI_USER, stream=True)
    with (
        pytest.raises(anthropic.InternalServerError),
        claude.messages.stream(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER) as stream,
    ):
        stream.get_final_message()


def test_sdk_retries_honour_retry_after(server: FakeLLMServer) -> None:
    retry = {"retry-after-ms": "1"}
    server.enqueue(Error(429, headers=retry), Text("openai ok"), Error(529, headers=retry), Text("claude ok"))
    with openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=2) as gpt:
        assert ask_gpt(gpt).choices[0].message.content == "openai ok"
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=2) as claude:
        assert [getattr(block, "text", None) for block in ask_claude(claude).content] == ["claude ok"]
    assert len(server.requests) == 4
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"


def test_delay_triggers_client_timeout(server: FakeLLMServer, gpt: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    server.enqueue(Delay(1.0, Text("too late")), Delay(1.0, Text("too late")))
    with pytest.raises(openai.APITimeoutError):
        gpt.chat.completions.create(model=GPT, messages=OPENAI_USER, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER, timeout=0.2)


def test_unknown_path_is_404_in_provider_format(gpt: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    with pytest.raises(openai.NotFoundError) as openai_info:
        gpt.models.list()
    assert openai_info.value.type == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as claude_info:
        claude.models.list()
    assert isinstance(claude_info.value.body, dict)
    assert claude_info.value.body["error"]["type"] == "not_found_error"


# --- recording, queueing, responders --------------------------------------------------------


def test_requests_are_recorded_and_queue_is_shared_fifo(
    server: FakeLLMServer, gpt: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    server.enqueue(Text("first"), Text("second"))
    assert ask_claude(claude).content[0].type == "text"
    assert ask_gpt(gpt).choices[0].message.content == "second"
    assert ask_gpt(gpt).choices[0].message.content == "ok"  # empty queue, no responder
    claude_request, gpt_request = server.requests[0], server.requests[1]
    assert (claude_request.protocol, claude_request.path) == ("anthropic", "/v1/messages")
    assert (gpt_request.protocol, gpt_request.path) == ("openai", "/v1/chat/completions")
    assert "anthropic-version" in claude_request.headers
    assert claude_request.headers["authorization"] == "Bearer test"  # anthropic 2.x sends no x-api-key
    assert gpt_request.headers["authorization"] == "Bearer test"
    assert claude_request.body == {"model": CLAUDE, "max_tokens": 100, "messages": CLAUDE_USER}
    assert gpt_request.body == {"model": GPT, "messages": OPENAI_USER}


def test_responder_used_when_queue_is_empty() -> None:
    seen: list[RecordedRequest] = []

    def responder(request: RecordedRequest) -> Text:
        seen.append(request)
        return Text(f"answer {len(seen)}")

    with (
        FakeLLMServer(responder=responder) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as gpt,
    ):
        fake.enqueue(Text("queued"))
        assert [ask_gpt(gpt).choices[0].message.content for _ in range(3)] == ["queued", "answer 1", "answer 2"]
    assert len(seen) == 2


def test_one_tool_call_responder_openai_loop() -> None:
    with (
        FakeLLMServer(responder=one_tool_call_responder) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as gpt,
    ):
        first = gpt.chat.completions.create(model=GPT, messages=OPENAI_USER, tools=[OPENAI_TOOL])
        call = (first.choices[0].message.tool_calls or [])[0]
        assert call.type == "function"
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "x", "days": 1})
        history: list[ChatCompletionMessageParam] = [
            *OPENAI_USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ]
        second = gpt.chat.completions.create(model=GPT, messages=history, tools=[OPENAI_TOOL])
        assert second.choices[0].message.content == "done"
        assert ask_gpt(gpt).choices[0].message.content == "ok"


def test_one_tool_call_responder_anthropic_loop() -> None:
    with (
        FakeLLMServer(responder=one_tool_call_responder) as fake,
        anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0) as claude,
    ):
        first = claude.messages.create(model=CLAUDE, max_tokens=100, messages=CLAUDE_USER, tools=[CLAUDE_TOOL])
        use = tool_uses(first)[0]
        assert (use.name, use.input) == ("get_weather", {"city": "x", "days": 1})
        history: list[MessageParam] = [
            *CLAUDE_USER,
            {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ]
        second = claude.messages.create(model=CLAUDE, max_tokens=100, messages=history, tools=[CLAUDE_TOOL])
        assert [getattr(block, "text", None) for block in second.content] == ["done"]


def test_cli_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "tests.fakes.llm_server", "--port", "0", "--mode", "one-tool-call"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            with openai.OpenAI(base_url=line.split()[-1] + "/v1", api_key="test", max_retries=0) as gpt:
                assert ask_gpt(gpt).choices[0].message.content == "ok"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
