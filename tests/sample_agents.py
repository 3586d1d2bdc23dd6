"""Agents the tests run: one per provider, one with its own turn, and the demo agent."""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from typing import Any

from agentplatform import Agent, RunContext, StaticContext, ToolCallError, ToolPermission, tool
from agentplatform.demo import agent as demo_agent

CALLS: list[tuple[str, dict[str, Any]]] = []  # what the tools actually executed, for assertions
GATE = threading.Event()  # `wait_at_gate` blocks until a test sets it


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@tool
def get_weather(city: str, unit: Unit = Unit.C) -> str:
    """Current weather for a city.

    Args:
        city: The city.
        unit: Temperature unit.
    """
    CALLS.append(("get_weather", {"city": city, "unit": unit.value}))
    return f"sunny in {city}, 21 {unit.value}"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    CALLS.append(("add", {"a": a, "b": b}))
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    CALLS.append(("explode", {"reason": reason}))
    raise RuntimeError(f"boom: {reason}")


@tool(timeout=0.2)
def slow() -> str:
    """Takes longer than its timeout."""
    CALLS.append(("slow", {}))
    time.sleep(1.0)
    return "too late"


@tool
async def fetch_async(key: str) -> dict[str, str]:
    """An async tool."""
    await asyncio.sleep(0)
    CALLS.append(("fetch_async", {"key": key}))
    return {"key": key, "value": key.upper()}


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    CALLS.append(("send_email", {"to": to, "subject": subject}))
    return "sent"


@tool
def delete_everything() -> str:
    """Never to be run."""
    CALLS.append(("delete_everything", {}))
    return "deleted"


@tool(timeout=10)
def wait_at_gate() -> str:
    """Blocks until the test opens the gate."""
    CALLS.append(("wait_at_gate", {}))
    return "passed" if GATE.wait(timeout=10) else "gate never opened"


TOOLS = [
    wait_at_gate,
    get_weather,
    add,
    explode,
    slow,
    fetch_async,
    send_email.with_permission(ToolPermission.CONFIRM),
    delete_everything.with_permission(ToolPermission.DENY),
]

openai_agent = Agent(name="oai", model="openai:gpt-test", instructions="Be brief.", tools=TOOLS)
anthropic_agent = Agent(name="claude", model="anthropic:claude-test", instructions="Be brief.", tools=TOOLS)


class Calculator(Agent):
    """Drives its own turn: parses "a+b" and adds through the platform's tool gate."""

    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002
        a, _, b = input.partition("+")
        ctx.add_usage(input_tokens=3, output_tokens=1)
        result = ctx.call_tool("add", {"a": int(a), "b": int(b)})
        try:
            ctx.call_tool("delete_everything", {})
        except ToolCallError as exc:
            return f"{result} (and {exc.code})"
        return str(result)


calculator = Calculator(name="calc", tools=[add, delete_everything.with_permission(ToolPermission.DENY)])


class Mailer(Agent):
    """Drives its own turn: adds, then emails the sum (a CONFIRM tool) to the address given."""

    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002
        total = ctx.call_tool("add", {"a": 40, "b": 2})
        try:
            return str(ctx.call_tool("send_email", {"to": input, "subject": f"total {total}"}))
        except ToolCallError as exc:
            return f"not sent ({exc.code})"


mailer = Mailer(name="mailer", tools=[add, send_email.with_permission(ToolPermission.CONFIRM)])

# Context from code; the context tests bind more sources to it in the database.
context_agent = Agent(
    name="ctx",
    model="openai:gpt-test",
    instructions="Answer from the context.",
    tools=[add],
    context=[StaticContext("Refunds take 5 business days.", title="Refund policy", name="handbook")],
)

AGENTS = [openai_agent, anthropic_agent, calculator, mailer, demo_agent, context_agent]
