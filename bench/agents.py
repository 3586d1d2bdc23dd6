"""The benchmark's agents: `bench` (one trivial tool: each run is two model calls and one tool
call), `bench-approve`, whose one tool needs a human decision (CONFIRM), and `bench-empty`,
whose turn answers at once (no model call, no tool: what a run costs the platform itself)."""

from __future__ import annotations

from agentplatform import Agent, RunContext, ToolPermission, tool


@tool
def lookup(key: str) -> str:
    """Look a value up by key (benchmark: a constant-time string).

    Args:
        key: The key to look up.
    """
    return f"value-of-{key}"


@tool
def send_report(to: str) -> str:
    """Send the report to an address (benchmark: nothing is sent).

    Args:
        to: The recipient.
    """
    return f"report sent to {to}"


agent = Agent(name="bench", model="openai:bench-model", instructions="Answer briefly.", tools=[lookup])
approver = Agent(
    name="bench-approve",
    model="openai:bench-model",
    instructions="Send the report when asked.",
    tools=[send_report.with_permission(ToolPermission.CONFIRM)],
)


class Empty(Agent):
    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002  # the SDK's name
        return "ok"


empty = Empty(name="bench-empty", instructions="Answers at once.")
agents = [agent, approver, empty]
