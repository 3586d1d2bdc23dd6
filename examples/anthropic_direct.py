"""An agent that drives the official `anthropic` SDK itself, served by agentplatform.

The platform still owns what matters in production: every tool call goes through
`ctx.call_tool`, which applies the tool's permission (ALLOW / CONFIRM / DENY), validates
the arguments and records the call and its result in the session.

    ANTHROPIC_API_KEY=sk-ant-... python examples/anthropic_direct.py  # needs only the project's requirements

Environment: ANTHROPIC_API_KEY, optionally ANTHROPIC_BASE_URL and ANTHROPIC_MODEL.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

import anthropic
from anthropic.types import ToolUseBlock

from agentplatform import Agent, ChatMessage, RunContext, ToolCallError, ToolPermission, serve, tool

MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-5-5")
Unit = Literal["km", "mi", "m", "ft"]  # becomes an enum in the schema; other values are refused
_METRES = {"km": 1000.0, "mi": 1609.344, "m": 1.0, "ft": 0.3048}


@tool
def convert_length(value: float, from_unit: Unit, to_unit: Unit) -> str:
    """Convert a length between kilometres, miles, metres and feet.

    Args:
        value: The number to convert.
        from_unit: The unit of `value`.
        to_unit: The unit to convert to.
    """
    return f"{value:g} {from_unit} = {value * _METRES[from_unit] / _METRES[to_unit]:.4g} {to_unit}"


@tool
def book_meeting_room(room: str, time: str) -> str:
    """Book a meeting room (example: nothing is booked).

    Args:
        room: The room's name.
        time: When, e.g. "tomorrow 10:00".
    """
    return f"{room} booked for {time}"


def to_anthropic(history: list[ChatMessage], text: str) -> list[dict[str, Any]]:
    """Platform messages as Anthropic turns: tool results travel in a user turn; same-role turns merge."""
    turns: list[dict[str, Any]] = []
    for message in [*history, ChatMessage(role="user", content=text)]:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if blocks and turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        elif blocks:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        result = {"tool_use_id": message.tool_call_id, "content": message.content, "is_error": message.is_error}
        return [{"type": "tool_result", **result}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    for call in message.tool_calls:
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


class AnthropicAgent(Agent):
    """Runs its own tool loop on the Anthropic Messages API."""

    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002  # the SDK's name for it
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in self.tools.values()
        ]
        messages = to_anthropic(ctx.history, input)
        steps = self.max_steps or 10
        with anthropic.Anthropic() as client:  # reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL
            for _ in range(steps):
                reply = client.messages.create(
                    model=MODEL,
                    max_tokens=1024,
                    system=self.instructions,
                    messages=messages,  # type: ignore[arg-type]  # plain dicts rather than the SDK's TypedDicts
                    tools=tools,  # type: ignore[arg-type]
                )
                ctx.add_usage(reply.usage.input_tokens, reply.usage.output_tokens)
                if reply.stop_reason != "tool_use":
                    return "".join(block.text for block in reply.content if block.type == "text")
                messages.append({"role": "assistant", "content": reply.content})
                results = [run_tool(block, ctx) for block in reply.content if isinstance(block, ToolUseBlock)]
                messages.append({"role": "user", "content": results})
        raise RuntimeError(f"no final answer after {steps} model calls")


def run_tool(block: ToolUseBlock, ctx: RunContext) -> dict[str, Any]:
    """One tool_use block through the platform's gate, as a tool_result block.

    A CONFIRM tool raises ApprovalRequired (a BaseException, deliberately not caught here):
    the run pauses until a human decides.
    """
    result = {"type": "tool_result", "tool_use_id": block.id}
    try:
        value = ctx.call_tool(block.name, block.input)
    except ToolCallError as exc:  # denied, invalid arguments, raised or timed out: tell the model
        return {**result, "content": str(exc), "is_error": True}
    return {**result, "content": value if isinstance(value, str) else json.dumps(value, default=str)}


agent = AnthropicAgent(
    name="anthropic-direct",
    model=f"anthropic:{MODEL}",  # a label here: run() below calls the model itself
    description="Claude through the anthropic SDK, with a unit converter and a room booking that needs approval.",
    instructions="You are a helpful office assistant. Use the tools when they help; be brief.",
    tools=[convert_length, book_meeting_room.with_permission(ToolPermission.CONFIRM)],
)

if __name__ == "__main__":
    serve(agent)
