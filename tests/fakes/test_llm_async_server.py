"""The asyncio fake model server: the same answers as the threaded one, through the real SDKs,
a latency per call, and many concurrent calls at once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.fakes.llm_async_server import AsyncFakeLLMServer
from tests.fakes.llm_server import one_tool_call_responder

REPO_ROOT = Path(__file__).resolve().parents[2]
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
LOOKUP: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
    },
}


@pytest.fixture
def server() -> Iterator[AsyncFakeLLMServer]:
    with AsyncFakeLLMServer(responder=one_tool_call_responder) as fake:
        yield fake


@pytest.fixture
def gpt(server: AsyncFakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as client:
        yield client


def test_openai_plain_reply_without_tools(gpt: openai.OpenAI) -> None:
    completion = gpt.chat.completions.create(model="m", messages=USER)
    assert completion.choices[0].message.content == "ok"
    assert completion.choices[0].finish_reason == "stop"


def test_openai_one_tool_call_loop(gpt: openai.OpenAI) -> None:
    first = gpt.chat.completions.create(model="m", messages=USER, tools=[LOOKUP])
    calls = first.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls if c.type == "function"] == [
        ("lookup", {"key": "x"})
    ]
    history: list[ChatCompletionMessageParam] = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": calls[0].id, "content": "value"},
    ]
    second = gpt.chat.completions.create(model="m", messages=history, tools=[LOOKUP])
    assert second.choices[0].message.content == "done"


def test_openai_stream_with_usage(gpt: openai.OpenAI) -> None:
    stream = gpt.chat.completions.create(
        model="m", messages=USER, tools=[LOOKUP], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    names = [call.function.name for d in deltas for call in d.tool_calls or [] if call.function]
    assert "lookup" in names
    assert chunks[-1].usage is not None
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_anthropic_reply(server: AsyncFakeLLMServer) -> None:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0) as claude:
        message = claude.messages.create(model="c", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert [getattr(block, "text", None) for block in message.content] == ["ok"]


def test_unknown_path_is_404(gpt: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        gpt.models.list()


def test_latency_is_per_call() -> None:
    with (
        AsyncFakeLLMServer(latency=0.3) as fake,
        openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0) as gpt,
    ):
        start = time.perf_counter()
        gpt.chat.completions.create(model="m", messages=USER)
        assert time.perf_counter() - start >= 0.3


async def _post_many(port: int, count: int) -> list[bytes]:
    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"model": "m", "messages": []}'
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        data = await reader.read()
        writer.close()
        return data.split(b"\r\n", 1)[0]

    return await asyncio.gather(*(one() for _ in range(count)))


def test_many_concurrent_calls_wait_together() -> None:
    with AsyncFakeLLMServer(latency=2.0) as fake:  # longer than reading 500 requests takes
        statuses = asyncio.run(_post_many(fake.port, 500))
    assert set(statuses) == {b"HTTP/1.1 200 OK"}
    assert fake.handler.calls == 500
    assert fake.handler.most_waiting == 500  # all waiting at once, none behind another


def test_cli_serves_with_latency_until_sigterm() -> None:
    command = [sys.executable, "-m", "tests.fakes.llm_async_server", "--port", "0", "--latency", "0.2"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:")
            with openai.OpenAI(base_url=line.split()[-1] + "/v1", api_key="test", max_retries=0) as gpt:
                start = time.perf_counter()
                assert gpt.chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"
                assert time.perf_counter() - start >= 0.2
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
