"""What an AG-UI client sends, as the platform takes it: `RunAgentInput` validated with the
protocol package's own model; the last user message is the run's input, the messages before
it a new session's history.

System, developer, activity and reasoning messages are left out: an agent's instructions are
its own. Tool calls in the conversation are history; each must be answered by a tool message
before the next turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ag_ui.core import AssistantMessage, RunAgentInput, TextPart, ToolMessage, UserMessage
from pydantic import ValidationError

from agentplatform.errors import InvalidInput
from agentplatform.sdk.models import ChatMessage, ToolCall


@dataclass(frozen=True)
class Conversation:
    history: list[ChatMessage]
    text: str  # the last user message: the run's input


def run_input(body: Any) -> RunAgentInput:
    """The request body as a `RunAgentInput`, or a 400 naming the first field at fault."""
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a RunAgentInput object.", details={"param": "body"})
    try:
        parsed = RunAgentInput.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInput(f"{where}: {first['msg']}", details={"param": where}) from None
    if not parsed.thread_id.strip() or not parsed.run_id.strip():
        raise InvalidInput("threadId and runId must not be empty.", details={"param": "threadId"})
    return parsed


def conversation(parsed: RunAgentInput) -> Conversation:
    turns = [turn for n, message in enumerate(parsed.messages) if (turn := _turn(message, n)) is not None]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        message = "messages must end with a user message with text: the agent answers it."
        raise InvalidInput(message, details={"param": "messages"})
    return Conversation(_answered(turns[:-1]), turns[-1].content)


def _turn(message: Any, n: int) -> ChatMessage | None:
    if isinstance(message, UserMessage):
        return ChatMessage("user", _text(message.content, n))
    if isinstance(message, AssistantMessage):
        calls = tuple(
            _call(call.id, call.function.name, call.function.arguments, n) for call in message.tool_calls or []
        )
        return ChatMessage("assistant", message.content or "", calls)
    if isinstance(message, ToolMessage):
        return ChatMessage("tool", _text(message.content, n), tool_call_id=message.tool_call_id)
    return None  # system, developer, activity, reasoning


def _text(content: str | list[Any], n: int) -> str:
    if isinstance(content, str):
        return content
    if not all(isinstance(part, TextPart) for part in content):
        raise InvalidInput(f"messages.{n}.content: only text parts are supported.", details={"param": f"messages.{n}"})
    return "".join(part.text for part in content)


def _call(call_id: str, name: str, arguments: str, n: int) -> ToolCall:
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        message = f"messages.{n}: a tool call's arguments must be a JSON object, as a string."
        raise InvalidInput(message, details={"param": f"messages.{n}.toolCalls"})
    return ToolCall(call_id, name, parsed)


def _answered(history: list[ChatMessage]) -> list[ChatMessage]:
    """The history, each tool result named after its call; every call answered before the next turn."""
    out: list[ChatMessage] = []
    waiting: dict[str, str] = {}  # call id -> tool name, for the last assistant turn's calls
    for message in history:
        if message.role == "tool":
            if message.tool_call_id not in waiting:
                raise _unanswered(f"A tool message answers no earlier call ({message.tool_call_id}).")
            name = waiting.pop(message.tool_call_id)
            out.append(ChatMessage("tool", message.content, tool_call_id=message.tool_call_id, name=name))
            continue
        if waiting:
            raise _unanswered(f"The tool call {next(iter(waiting))} has no result before the next message.")
        waiting = {call.id: call.name for call in message.tool_calls}
        out.append(message)
    if waiting:
        raise _unanswered(f"The tool call {next(iter(waiting))} has no result before the last message.")
    return out


def _unanswered(message: str) -> InvalidInput:
    return InvalidInput(message, details={"param": "messages"})
