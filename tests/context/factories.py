"""Plain factories for the context tests."""

from __future__ import annotations

from typing import Any

from context import services
from context.models import ContextSource
from tests.factories import SETUP, agent_row


def bind_source(
    agent: str = "ctx", name: str = "source", provider: str = "StaticContext", *, secret: str = "", **fields: Any
) -> ContextSource:
    """A source bound to an agent as an operator would (validated, the secret encrypted)."""
    fields.setdefault("parameters", {"text": "bound text"})
    source = ContextSource(
        agent=agent_row(agent), name=name, provider=f"agentplatform.sdk.context.{provider}", **fields
    )
    return services.save_source(source, actor=SETUP, secret=secret)
