"""The benchmark's agent: one trivial tool, so that each run is two model calls and one tool call."""

from __future__ import annotations

from agentplatform import Agent, tool


@tool
def lookup(key: str) -> str:
    """Look a value up by key (benchmark: a constant-time string).

    Args:
        key: The key to look up.
    """
    return f"value-of-{key}"


agent = Agent(name="bench", model="openai:bench-model", instructions="Answer briefly.", tools=[lookup])
