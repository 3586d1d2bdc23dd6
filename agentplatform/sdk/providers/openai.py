"""OpenAI-compatible chat completions through the official `openai` SDK.

Works with any server that speaks the protocol (vLLM, Ollama, llama.cpp) via `base_url`
or the SDK's own `OPENAI_BASE_URL` / `OPENAI_API_KEY` environment variables.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from agentplatform.sdk.models import ChatMessage, ModelRequest, ModelResponse, ProviderError, ToolCall, Usage
from agentplatform.sdk.providers.base import SDKModel
from agentplatform.sdk.telemetry import traced_completion


def _to_openai(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _dump_arguments(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _dump_arguments(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _parse_arguments(raw: str | None) -> Any:
    try:
        return json.loads(raw or "{}")
    except json.JSONDecodeError:
        return raw


class OpenAIModel(SDKModel):
    provider = "openai"
    key_variable = "OPENAI_API_KEY"
    key_hint = " (any value for a local server)"

    @functools.cached_property
    def client(self) -> openai.OpenAI:
        return openai.OpenAI(
            api_key=self.resolved_api_key(), base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
        )

    @traced_completion
    def complete(self, request: ModelRequest) -> ModelResponse:
        messages: list[Any] = [{"role": "system", "content": request.instructions}] if request.instructions else []
        messages += [_to_openai(m) for m in request.messages]
        tools: Any = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        try:
            # The SDK's client (auth, retries with backoff, errors, typed response), given a
            # body that is already plain JSON: `chat.completions.create` would re-walk every
            # message through its type-driven transform, a cost that grows with the history.
            if request.on_text is None:
                return _response(self.client.post("/chat/completions", body=body, cast_to=ChatCompletion))
            body.update(stream=True, stream_options={"include_usage": True})
            chunks = self.client.post(
                "/chat/completions",
                body=body,
                cast_to=ChatCompletionChunk,
                stream=True,
                stream_cls=openai.Stream[ChatCompletionChunk],
            )
            return _gather(chunks, request.on_text)
        except openai.APIStatusError as exc:
            raise ProviderError(self.label, _status_message(exc), status=exc.status_code) from exc
        except openai.APIError as exc:
            raise ProviderError(self.label, exc.message) from exc


def _response(completion: ChatCompletion) -> ModelResponse:
    choice = completion.choices[0]
    calls = tuple(
        ToolCall(id=c.id, name=c.function.name, arguments=_parse_arguments(c.function.arguments))
        for c in choice.message.tool_calls or ()
        if c.type == "function"
    )
    usage = completion.usage
    return ModelResponse(
        text=choice.message.content or "",
        tool_calls=calls,
        usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        stop_reason=choice.finish_reason or "",
    )


def _gather(chunks: Iterable[ChatCompletionChunk], on_text: Callable[[str], None]) -> ModelResponse:
    """One response from a stream of chunks, passing on the text as it comes."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage, finish = Usage(), ""
    for chunk in chunks:
        if chunk.usage is not None:
            usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                text.append(choice.delta.content)
                on_text(choice.delta.content)
            for part in choice.delta.tool_calls or ():
                call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": []})
                call["id"] = part.id or call["id"]
                if part.function is not None:
                    call["name"] += part.function.name or ""
                    call["arguments"].append(part.function.arguments or "")
            finish = choice.finish_reason or finish
    return ModelResponse(
        text="".join(text),
        tool_calls=tuple(
            ToolCall(id=c["id"], name=c["name"], arguments=_parse_arguments("".join(c["arguments"])))
            for _, c in sorted(calls.items())
        ),
        usage=usage,
        stop_reason=finish,
    )


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return f"HTTP {exc.status_code}: {error['message']}"
    return f"HTTP {exc.status_code}: {exc.message}"
