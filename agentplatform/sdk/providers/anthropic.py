"""Anthropic Messages through the official `anthropic` SDK (`ANTHROPIC_API_KEY`)."""

from __future__ import annotations

import functools
from typing import Any

import anthropic

from agentplatform.sdk.models import ChatMessage, ModelRequest, ModelResponse, ProviderError, ToolCall, Usage
from agentplatform.sdk.providers.base import SDKModel
from agentplatform.sdk.telemetry import traced_acompletion, traced_completion


def _content(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
                "is_error": message.is_error,
            }
        ]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _to_anthropic(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """Anthropic alternates user/assistant turns: tool results travel in a user turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _content(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


class AnthropicModel(SDKModel):
    provider = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"
    max_tokens = 4096

    @functools.cached_property
    def client(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            api_key=self.resolved_api_key(), base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
        )

    @functools.cached_property
    def async_client(self) -> anthropic.AsyncAnthropic:
        self.on_loop()
        return anthropic.AsyncAnthropic(
            api_key=self.resolved_api_key(),
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=anthropic.DefaultAsyncHttpxClient(limits=self.http_limits()),
        )

    def _options(self, request: ModelRequest) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.instructions:
            options["system"] = request.instructions
        if request.tools:
            options["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
            ]
        options.update(model=self.model, max_tokens=self.max_tokens, messages=_to_anthropic(request.messages))
        return options

    @traced_completion
    def complete(self, request: ModelRequest) -> ModelResponse:
        options = self._options(request)
        try:
            if request.on_text is None:
                return _response(self.client.messages.create(**options))
            with self.client.messages.stream(**options) as stream:
                for text in stream.text_stream:
                    request.on_text(text)
                return _response(stream.get_final_message())
        except anthropic.APIError as exc:
            raise self._error(exc) from exc

    @traced_acompletion
    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        """`complete` on an event loop (the async client: waiting holds no thread)."""
        options = self._options(request)
        try:
            if request.on_text is None:
                return _response(await self.async_client.messages.create(**options))
            async with self.async_client.messages.stream(**options) as stream:
                async for text in stream.text_stream:
                    request.on_text(text)
                return _response(await stream.get_final_message())
        except anthropic.APIError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: anthropic.APIError) -> ProviderError:
        if isinstance(exc, anthropic.APIStatusError):
            return ProviderError(self.label, f"HTTP {exc.status_code}: {_status_message(exc)}", status=exc.status_code)
        return ProviderError(self.label, exc.message)


def _response(reply: Any) -> ModelResponse:
    text = "".join(block.text for block in reply.content if block.type == "text")
    calls = tuple(
        ToolCall(id=block.id, name=block.name, arguments=block.input)
        for block in reply.content
        if block.type == "tool_use"
    )
    return ModelResponse(
        text=text,
        tool_calls=calls,
        usage=Usage(reply.usage.input_tokens, reply.usage.output_tokens),
        stop_reason=reply.stop_reason or "",
    )


def _status_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message
