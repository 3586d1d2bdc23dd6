"""A Pydantic AI agent wrapped for agentplatform, on any OpenAI-compatible endpoint.

Pydantic AI runs the loop; the platform keeps the control. The framework is offered thin
adapters, never the Python functions themselves: calling an adapter runs `ctx.call_tool`,
which applies the tool's permission (ALLOW / CONFIRM / DENY), validates the arguments and
records the call and its result in the session.

    pip install -r examples/requirements.txt
    OPENAI_API_KEY=sk-... python examples/framework_wrapper.py

Environment: OPENAI_API_KEY, optionally OPENAI_BASE_URL (any OpenAI-compatible server: vLLM,
Ollama, LiteLLM...) and OPENAI_MODEL.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

import pydantic_ai
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from agentplatform import Agent, ChatMessage, RunContext, Tool, ToolCallError, ToolPermission, serve, tool

MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
_ORDERS = {"A-1001": ("shipped", 42.50), "A-1002": ("processing", 19.99)}


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """The status and total of an order (example data: A-1001, A-1002).

    Args:
        order_id: The order number, e.g. "A-1001".
    """
    status, total = _ORDERS[order_id]  # an unknown order raises: the model sees the error
    return {"order_id": order_id, "status": status, "total": total}


@tool
def refund_order(order_id: str, amount: float) -> str:
    """Refund (part of) an order (example: no money moves).

    Args:
        order_id: The order number.
        amount: The amount to refund.
    """
    return f"refunded {amount:.2f} on {order_id}"


def adapter(platform_tool: Tool, ctx: RunContext) -> pydantic_ai.Tool[None]:
    """What Pydantic AI sees of a platform tool: its name, description and schema, and a call
    that goes through `ctx.call_tool` (which validates the arguments against that schema).
    Sync on purpose: Pydantic AI runs it in a worker thread, outside the event loop."""

    def call(**arguments: Any) -> Any:
        try:
            return ctx.call_tool(platform_tool.name, arguments)  # ApprovalRequired passes through
        except ToolCallError as exc:  # denied, invalid arguments, raised or timed out: tell the model
            raise pydantic_ai.ToolFailed(str(exc)) from exc

    return pydantic_ai.Tool.from_schema(
        call, name=platform_tool.name, description=platform_tool.description, json_schema=platform_tool.parameters
    )


def to_pydantic_ai(history: list[ChatMessage]) -> list[ModelMessage]:
    """The session's earlier messages in Pydantic AI's message types."""
    messages: list[ModelMessage] = []
    for message in history:
        if message.role == "user":
            messages.append(ModelRequest(parts=[UserPromptPart(message.content)]))
        elif message.role == "tool":
            outcome: Literal["failed", "success"] = "failed" if message.is_error else "success"
            part = ToolReturnPart(message.name, message.content, message.tool_call_id, outcome=outcome)
            messages.append(ModelRequest(parts=[part]))
        else:
            parts: list[ModelResponsePart] = [TextPart(message.content)] if message.content else []
            parts += [ToolCallPart(call.name, call.arguments, call.id) for call in message.tool_calls]
            messages.append(ModelResponse(parts=parts))
    return messages


class PydanticAIAgent(Agent):
    """Delegates the turn to a Pydantic AI agent built for this run's context."""

    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002  # the SDK's name for it
        framework_agent = pydantic_ai.Agent(
            OpenAIChatModel(MODEL, provider=OpenAIProvider()),  # reads OPENAI_API_KEY and OPENAI_BASE_URL
            instructions=self.instructions,
            tools=[adapter(t, ctx) for t in self.tools.values()],
        )
        usage = pydantic_ai.RunUsage()  # filled in as the run goes, so an interrupted run still counts
        limits = pydantic_ai.UsageLimits(request_limit=self.max_steps or 10)
        try:
            return asyncio.run(_run(framework_agent, input, to_pydantic_ai(ctx.history), usage, limits))
        finally:
            ctx.add_usage(usage.input_tokens, usage.output_tokens)


async def _run(
    framework_agent: pydantic_ai.Agent[None, str],
    text: str,
    history: list[ModelMessage],
    usage: pydantic_ai.RunUsage,
    limits: pydantic_ai.UsageLimits,
) -> str:
    async with framework_agent:  # closes the model's HTTP client when the turn ends
        result = await framework_agent.run(text, message_history=history, usage=usage, usage_limits=limits)
    return result.output


agent = PydanticAIAgent(
    name="pydantic-ai-orders",
    model=f"openai:{MODEL}",  # a label here: run() below lets Pydantic AI call the model
    description="A Pydantic AI agent for order questions; refunds need a human's approval.",
    instructions="You answer questions about orders. Use the tools; be brief.",
    tools=[lookup_order, refund_order.with_permission(ToolPermission.CONFIRM)],
)

if __name__ == "__main__":
    serve(agent)
