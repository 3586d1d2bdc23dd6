"""The provider-neutral conversation types and the model provider protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Any  # usually a dict; a str when the model sent JSON we could not parse


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation: what the model is sent and what the session records.

    Roles: user, assistant (text and/or tool calls), tool (a call's result; `name` is the tool).
    """

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""
    is_error: bool = False


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


@dataclass(frozen=True)
class ModelRequest:
    """What a model is asked. With `on_text`, a provider that can stream calls it with each
    chunk of the answer's text as it arrives (a provider that cannot simply never calls it)."""

    instructions: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    on_text: Callable[[str], None] | None = None


@dataclass(frozen=True)
class ModelResponse:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = ""


class ProviderError(Exception):
    """A model provider failed after its retries. `message` is the provider's own words."""

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status


@runtime_checkable
class ModelProvider(Protocol):
    """Anything with a `label` and `complete()` can be an agent's model. A provider that also
    has `async def acomplete(request)` is called that way on the worker's event loop (waiting
    holds no thread); `complete()` alone is called on a bounded thread pool."""

    label: str

    def complete(self, request: ModelRequest) -> ModelResponse: ...
