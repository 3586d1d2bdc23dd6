"""OpenAI-compatible chat completions through the official `openai` SDK.

Works with any server that speaks the protocol (vLLM, Ollama, llama.cpp) via `base_url`
or the SDK's own `OPENAI_BASE_URL` / `OPENAI_API_KEY` environment variables.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import openai

from agentplatform.sdk.models import ChatMessage, ModelRequest, ModelResponse, ProviderError, ToolCall, Usage
from agentplatform.sdk.providers.base import SDKModel
from agentplatform.sdk.telemetry import traced_acompletion, traced_completion


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

    @functools.cached_property
    def async_client(self) -> openai.AsyncOpenAI:
        self.on_loop()
        return openai.AsyncOpenAI(
            api_key=self.resolved_api_key(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=openai.DefaultAsyncHttpxClient(limits=self.http_limits()),
        )

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        messages: list[Any] = [{"role": "system", "content": request.instructions}] if request.instructions else []
        messages += [_to_openai(m) for m in request.messages]
        tools: Any = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            body["tools"] = tools
        if request.on_text is not None:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    # The SDK's client (auth, retries with backoff, errors), given a body that is already
    # plain JSON (`chat.completions.create` would re-walk every message through its
    # type-driven transform, a cost that grows with the history) and answering plain JSON
    # too: building the SDK's typed models for a response, or for every chunk of a stream,
    # costs more CPU than the rest of the call.

    @traced_completion
    def complete(self, request: ModelRequest) -> ModelResponse:
        body = self._body(request)
        try:
            if request.on_text is None:
                return self._answer(self.client.post("/chat/completions", body=body, cast_to=object))
            chunks = self.client.post(
                "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.Stream[object]
            )
            gathered = _Gathered(request.on_text)
            for chunk in chunks:
                gathered.add(chunk)
            return gathered.response()
        except openai.APIError as exc:
            raise self._error(exc) from exc

    @traced_acompletion
    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        """`complete` on an event loop (the async client: waiting holds no thread)."""
        body = self._body(request)
        try:
            if request.on_text is None:
                return self._answer(await self.async_client.post("/chat/completions", body=body, cast_to=object))
            chunks = await self.async_client.post(
                "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.AsyncStream[object]
            )
            gathered = _Gathered(request.on_text)
            async for chunk in chunks:
                gathered.add(chunk)
            return gathered.response()
        except openai.APIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: openai.APIError) -> ProviderError:
        if isinstance(exc, openai.APIStatusError):
            return ProviderError(self.label, _status_message(exc), status=exc.status_code)
        return ProviderError(self.label, exc.message)

    def _answer(self, completion: Any) -> ModelResponse:
        if not isinstance(completion, dict):  # a body that is not JSON comes back as text
            raise ProviderError(self.label, f"The response is not a JSON object: {str(completion)[:200]}")
        return _response(completion)


def _response(completion: dict[str, Any]) -> ModelResponse:
    """A chat completion (its JSON) as our response."""
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = tuple(
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=_parse_arguments(c["function"].get("arguments")))
        for c in message.get("tool_calls") or ()
        if c.get("type", "function") == "function"
    )
    return ModelResponse(
        text=message.get("content") or "",
        tool_calls=calls,
        usage=_usage(completion.get("usage")),
        stop_reason=choice.get("finish_reason") or "",
    )


def _usage(usage: Any) -> Usage:
    return Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0) if usage else Usage()


class _Gathered:
    """One response from a stream of chunks (their JSON), passing on the text as it comes."""

    def __init__(self, on_text: Callable[[str], None]) -> None:
        self.on_text = on_text
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage, self.finish = Usage(), ""

    def add(self, chunk: Any) -> None:
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in (chunk.get("choices") or ())[:1]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
                self.on_text(delta["content"])
            for part in delta.get("tool_calls") or ():
                call = self.calls.setdefault(part.get("index", 0), {"id": "", "name": "", "arguments": []})
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"].append(function.get("arguments") or "")
            self.finish = choice.get("finish_reason") or self.finish

    def response(self) -> ModelResponse:
        return ModelResponse(
            text="".join(self.text),
            tool_calls=tuple(
                ToolCall(id=c["id"], name=c["name"], arguments=_parse_arguments("".join(c["arguments"])))
                for _, c in sorted(self.calls.items())
            ),
            usage=self.usage,
            stop_reason=self.finish,
        )


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return f"HTTP {exc.status_code}: {error['message']}"
    return f"HTTP {exc.status_code}: {exc.message}"
