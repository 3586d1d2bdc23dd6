"""What a client sends, as the platform takes it: a conversation is the earlier messages (a new
session's history) and the last user message (the run's input).

System and developer messages (and `instructions`) are left out: an agent's instructions
are its own, set in code or by an operator. Tool calls in the conversation are its history;
each must be answered by a tool message (a `function_call_output`) before the next turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentplatform.errors import InvalidInput
from agentplatform.sdk.models import ChatMessage, ToolCall

LEFT_OUT = ("system", "developer")


@dataclass(frozen=True)
class Conversation:
    history: list[ChatMessage]
    text: str  # the last user message: the run's input


@dataclass(frozen=True)
class ApprovalAnswer:
    """An `mcp_approval_response` item: a decision on a pending approval request."""

    approval_id: str
    approve: bool
    reason: str


def _invalid(message: str, param: str) -> InvalidInput:
    return InvalidInput(message, details={"param": param})


def chat_conversation(messages: Any) -> Conversation:
    """Chat Completions' `messages`."""
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages must be a non-empty array of messages.", "messages")
    turns = []
    for n, message in enumerate(messages):
        param = f"messages[{n}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _invalid(f"{param} must be a message with a role.", param)
        if message["role"] not in LEFT_OUT:
            turns.append(_chat_message(message, param))
    return _conversation(turns, "messages")


def _chat_message(message: dict[str, Any], param: str) -> ChatMessage:
    role = message["role"]
    if role == "user":
        return ChatMessage("user", _text(message.get("content"), f"{param}.content", ("text", "input_text")))
    if role == "assistant":
        content = message.get("content")
        text = "" if content is None else _text(content, f"{param}.content", ("text", "output_text", "refusal"))
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise _invalid(f"{param}.tool_calls must be an array.", f"{param}.tool_calls")
        return ChatMessage(
            "assistant", text, tuple(_chat_call(c, f"{param}.tool_calls[{i}]") for i, c in enumerate(calls))
        )
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _invalid(f"{param}.tool_call_id is required.", f"{param}.tool_call_id")
        return ChatMessage("tool", _text(message.get("content"), f"{param}.content", ("text",)), tool_call_id=call_id)
    raise _invalid(f"{param}.role must be system, developer, user, assistant or tool.", f"{param}.role")


def _chat_call(call: Any, param: str) -> ToolCall:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(call.get("id"), str):
        raise _invalid(f"{param} must be a function call with an id.", param)
    return _tool_call(call["id"], function.get("name"), function.get("arguments"), param)


def _tool_call(call_id: str, name: Any, arguments: Any, param: str) -> ToolCall:
    if not isinstance(name, str) or not name:
        raise _invalid(f"{param}: a tool call needs a name.", param)
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise _invalid(f"{param}: arguments must be a JSON object, as a string.", param)
    return ToolCall(call_id, name, parsed)


def _text(content: Any, param: str, kinds: tuple[str, ...]) -> str:
    """A message's text: a string, or content parts of the given kinds (their texts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for n, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in kinds:
                raise _invalid(f"{param}[{n}]: only text content is supported.", f"{param}[{n}]")
            text = part.get("refusal") if kind == "refusal" else part.get("text")
            if not isinstance(text, str):
                raise _invalid(f"{param}[{n}]: a text part needs its text.", f"{param}[{n}]")
            texts.append(text)
        return "".join(texts)
    raise _invalid(f"{param} must be text or an array of text parts.", param)


def response_input(raw: Any) -> Conversation | list[ApprovalAnswer]:
    """The Responses API's `input`: text, a list of items making a conversation, or a list of
    `mcp_approval_response` items (answers to a paused response, never mixed with messages)."""
    if isinstance(raw, str):
        return _conversation([ChatMessage("user", raw)], "input")
    if not isinstance(raw, list) or not raw:
        raise _invalid("input must be text or a non-empty array of input items.", "input")
    kinds = [item.get("type", "message") if isinstance(item, dict) else None for item in raw]
    if "mcp_approval_response" in kinds:
        if set(kinds) != {"mcp_approval_response"}:
            raise _invalid("Send mcp_approval_response items on their own, without messages.", "input")
        return [_approval_answer(item, f"input[{n}]") for n, item in enumerate(raw)]
    turns: list[ChatMessage] = []
    for n, (item, kind) in enumerate(zip(raw, kinds, strict=True)):
        message = _response_item(item, kind, f"input[{n}]")
        if message is None:
            continue
        if message.role == "assistant" and message.tool_calls and turns and _calls_only(turns[-1]):
            turns[-1] = ChatMessage("assistant", turns[-1].content, (*turns[-1].tool_calls, *message.tool_calls))
        else:  # (consecutive function_call items are one assistant turn's parallel calls)
            turns.append(message)
    return _conversation(turns, "input")


def _calls_only(message: ChatMessage) -> bool:
    return message.role == "assistant" and bool(message.tool_calls)


def _response_item(item: dict[str, Any], kind: str | None, param: str) -> ChatMessage | None:
    if kind == "message":
        role = item.get("role")
        if role in LEFT_OUT:
            return None
        if role not in ("user", "assistant"):
            raise _invalid(f"{param}.role must be user, assistant, system or developer.", f"{param}.role")
        kinds = ("input_text",) if role == "user" else ("output_text", "refusal")
        return ChatMessage(role, _text(item.get("content"), f"{param}.content", kinds))
    if kind == "function_call":
        call = _tool_call(str(item.get("call_id") or ""), item.get("name"), item.get("arguments"), param)
        if not call.id:
            raise _invalid(f"{param}.call_id is required.", f"{param}.call_id")
        return ChatMessage("assistant", "", (call,))
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _invalid(f"{param}.call_id is required.", f"{param}.call_id")
        return ChatMessage("tool", _text(item.get("output"), f"{param}.output", ("input_text",)), tool_call_id=call_id)
    raise _invalid(f"{param}: items of type {kind!r} are not supported.", f"{param}.type")


def _approval_answer(item: dict[str, Any], param: str) -> ApprovalAnswer:
    approval_id, approve, reason = item.get("approval_request_id"), item.get("approve"), item.get("reason")
    if not isinstance(approval_id, str) or not isinstance(approve, bool):
        raise _invalid(f"{param}: an mcp_approval_response needs approval_request_id and approve.", param)
    if reason is not None and not isinstance(reason, str):
        raise _invalid(f"{param}.reason must be text.", f"{param}.reason")
    return ApprovalAnswer(approval_id, approve, reason or "")


def _conversation(turns: list[ChatMessage], param: str) -> Conversation:
    if not turns or turns[-1].role != "user":
        raise _invalid("The conversation must end with a user message: the agent answers it.", param)
    if not turns[-1].content.strip():
        raise _invalid("The last user message needs text.", param)
    return Conversation(_answered(turns[:-1], param), turns[-1].content)


def _answered(history: list[ChatMessage], param: str) -> list[ChatMessage]:
    """The history, each tool result named after its call; every call answered before the next turn."""
    out: list[ChatMessage] = []
    waiting: dict[str, str] = {}  # call id -> tool name, for the last assistant turn's calls
    for message in history:
        if message.role == "tool":
            if message.tool_call_id not in waiting:
                raise _invalid(f"A tool result answers no earlier call ({message.tool_call_id}).", param)
            name = waiting.pop(message.tool_call_id)
            out.append(ChatMessage("tool", message.content, tool_call_id=message.tool_call_id, name=name))
            continue
        if waiting:
            raise _invalid(f"The tool call {next(iter(waiting))} has no result before the next message.", param)
        waiting = {call.id: call.name for call in message.tool_calls}
        out.append(message)
    if waiting:
        raise _invalid(f"The tool call {next(iter(waiting))} has no result before the last message.", param)
    return out
