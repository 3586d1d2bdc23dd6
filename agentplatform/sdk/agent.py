"""The `Agent`: a name, a model, instructions and tools; optionally its own turn."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from agentplatform.sdk.context.base import ContextProvider
from agentplatform.sdk.models import ChatMessage, ModelProvider
from agentplatform.sdk.tools import Tool

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ApprovalRequired(BaseException):  # control flow, not an error
    """Raised by `ctx.call_tool` for a CONFIRM tool: the run stops until a human decides.

    A BaseException so that a wrapped framework's `except Exception` cannot swallow it.
    """

    def __init__(self, tool: str, arguments: Any) -> None:
        super().__init__(f"tool {tool!r} requires human approval")
        self.tool = tool
        self.arguments = arguments


class RunCancelled(BaseException):  # control flow, not an error
    """Raised at a step boundary once someone has cancelled the run."""


class ToolCallError(Exception):
    """A tool call that did not produce a result (denied, bad arguments, raised, timed out)."""

    def __init__(self, tool: str, message: str, *, code: str) -> None:
        super().__init__(message)
        self.tool = tool
        self.code = code


class RunContext(Protocol):
    """What an agent's turn can use. The platform provides it; calls are recorded."""

    run_id: str
    session_id: str
    agent_name: str
    metadata: Mapping[str, Any]
    context: str  # the agent's context sources, fetched for this run and rendered ("" without any)

    @property
    def history(self) -> list[ChatMessage]:
        """Earlier messages of this session, oldest first (bounded by the history limit)."""
        ...

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Run one of the agent's tools through the permission gate; raise ToolCallError.
        From a sync `run()` (which runs on a thread of its own)."""
        ...

    async def acall_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """`call_tool` for an `async def run()`, which runs on the worker's event loop."""
        ...

    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """Record tokens spent by a model this turn called itself."""
        ...

    def stream_text(self, text: str) -> None:
        """Send a chunk of the answer to live clients (`message.delta` events) as it is generated."""
        ...


class Agent:
    """An agent served by the platform.

    By default the platform runs its own loop: the model is called with the instructions,
    the session history and the tools until it answers without a tool call. A subclass may
    override `run(self, input, ctx)` to drive any SDK or framework itself; its tool calls
    must go through `ctx.call_tool(name, args)`, and its return value is the answer.

    `async def run(self, input, ctx)` runs on the worker's event loop, with its tool calls
    through `await ctx.acall_tool(name, args)`: while it waits on its model it holds no
    thread, so one worker carries many such runs. A sync `run()` is called on a bounded
    thread pool (AGENTPLATFORM_RUN_SYNC_THREADS), which caps how many run at once.

    `context` lists sources (`agentplatform.sdk.context`) fetched before each run and
    rendered into the system prompt after the instructions.
    """

    def __init__(
        self,
        name: str,
        *,
        model: str | ModelProvider = "demo",
        instructions: str = "",
        tools: Iterable[Tool] = (),
        description: str = "",
        max_steps: int | None = None,
        tool_timeout: float | None = None,
        context: Iterable[ContextProvider] = (),
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"agent name {name!r} must be lowercase letters, digits, '-' or '_' (max 63)")
        self.name = name
        self.model = model
        self.instructions = instructions
        self.description = description
        self.tools: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):
                raise TypeError(f"agent {name!r}: {item!r} is not a Tool; decorate it with @tool")
            if item.name in self.tools:
                raise ValueError(f"agent {name!r}: two tools are named {item.name!r}")
            self.tools[item.name] = item
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.context: list[ContextProvider] = []
        for source in context:
            if not isinstance(source, ContextProvider):
                raise TypeError(f"agent {name!r}: {source!r} is not a context provider")
            if any(other.name == source.name for other in self.context):
                raise ValueError(f"agent {name!r}: two context sources are named {source.name!r}; give one a name=")
            self.context.append(source)

    @property
    def model_label(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.label

    @property
    def overrides_run(self) -> bool:
        return type(self).run is not Agent.run

    def run(self, input: str, ctx: RunContext) -> str:  # noqa: A002  # the public name
        """Override to take over the turn; the platform's loop runs when this is not overridden."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Agent {self.name} model={self.model_label} tools={list(self.tools)}>"
