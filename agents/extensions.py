"""Extension points other apps fill at start-up, so that `agents` imports none of them.

A *run preparer* is called once per run, on the worker, before the agent's turn. It may
add text to the system prompt (the context app: what it fetched for this run) and tools
(an MCP server's: they pass the same permission gate as the agent's own), or fail the run
with a code and a message. Apps register theirs in `AppConfig.ready()`:

    from agents.extensions import run_preparers
    run_preparers.register(prepare_context)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.tools import Tool
from agents.models import Run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preparation:
    """What preparers add to one run."""

    instructions: str = ""  # appended to the agent's instructions, after a blank line
    tools: tuple[Tool, ...] = ()

    def apply(self, code_agent: CodeAgent, instructions: str) -> tuple[CodeAgent, str]:
        """The agent as this run sees it (its tools plus the added ones) and its system prompt."""
        prompt = "\n\n".join(part for part in (instructions, self.instructions) if part)
        if not self.tools:
            return code_agent, prompt
        agent = copy.copy(code_agent)  # the code's agent is shared by every run of the process
        agent.tools = {**code_agent.tools, **{tool.name: tool for tool in self.tools}}
        return agent, prompt


class PreparationFailed(Exception):
    """A preparer's reason not to run: the run fails with this code and message."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


RunPreparer = Callable[[Run, CodeAgent], Preparation]


class RunPreparers:
    """The registered preparers, called in registration order."""

    def __init__(self) -> None:
        self._preparers: list[RunPreparer] = []

    def register(self, preparer: RunPreparer) -> None:
        if preparer not in self._preparers:
            self._preparers.append(preparer)

    def prepare(self, run: Run, code_agent: CodeAgent) -> Preparation:
        """Every preparer's additions; a tool whose name is taken is left out (with a warning)."""
        texts: list[str] = []
        tools: list[Tool] = []
        taken = set(code_agent.tools)
        for preparer in self._preparers:
            try:
                prepared = preparer(run, code_agent)
            except PreparationFailed:
                raise
            except Exception as exc:  # a preparer's bug fails this run, visibly, rather than strand it
                logger.exception("run %s: preparer %r raised", run.pk, preparer)
                raise PreparationFailed("preparation_error", f"Preparing the run failed: {type(exc).__name__}") from exc
            texts += [prepared.instructions] if prepared.instructions else []
            for tool in prepared.tools:
                if tool.name in taken:
                    logger.warning("run %s: an added tool named %r is left out: the name is taken", run.pk, tool.name)
                    continue
                taken.add(tool.name)
                tools.append(tool)
        return Preparation("\n\n".join(texts), tuple(tools))


run_preparers = RunPreparers()
