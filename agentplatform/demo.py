"""The built-in demo agent, served when no agents are configured.

It runs on the offline demo model (no key, no network), so a fresh install shows a real
run with a tool call: try "What's the weather in Paris?".
"""

from __future__ import annotations

import hashlib

from agentplatform.sdk.agent import Agent
from agentplatform.sdk.tools import ToolPermission, tool

_CONDITIONS = ("sunny", "cloudy", "light rain", "windy", "clear skies")


@tool
def get_weather(city: str) -> str:
    """Current weather for a city (made-up but stable numbers: this is a demo).

    Args:
        city: The city name, e.g. "Paris".
    """
    digest = hashlib.sha256(city.strip().lower().encode()).digest()
    return f"{_CONDITIONS[digest[0] % len(_CONDITIONS)]}, {digest[1] % 30 + 2} °C in {city}"


@tool(permission=ToolPermission.CONFIRM)
def send_email(to: str, subject: str, body: str = "") -> str:
    """Send an email (demo: nothing is sent). Needs a human's approval.

    Args:
        to: Recipient address.
        subject: Subject line.
        body: Message text.
    """
    return f"email to {to} queued (demo: not actually sent)"


agent = Agent(
    name="demo",
    model="demo",
    description="Demo agent on the offline demo model: weather lookups, and an email tool that needs approval.",
    instructions="You are a helpful assistant. Use tools when they help.",
    tools=[get_weather, send_email],
)
