"""What the context app adds to a run before its turn: text for the system prompt (what
it fetched) and tools (an MCP server's, under the same permission gate), or a reason not
to run. The agents app calls `context.services.prepare_run` and applies the result."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.tools import Tool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preparation:
    """What the context app adds to one run."""

    instructions: str = ""  # appended to the agent's instructions, after a blank line
    tools: tuple[Tool, ...] = ()

    def apply(self, code_agent: CodeAgent, instructions: str) -> tuple[CodeAgent, str]:
        """The agent as this run sees it (its tools plus the added ones) and its system prompt."""
        prompt = "\n\n".join(part for part in (instructions, self.instructions) if part)
        if not self.tools:
            return code_agent, prompt
        added = {}
        for tool in self.tools:
            if tool.name in code_agent.tools or tool.name in added:
                logger.warning("an added tool named %r is left out: the name is taken", tool.name)
                continue
            added[tool.name] = tool
        agent = copy.copy(code_agent)  # the code's agent is shared by every run of the process
        agent.tools = {**code_agent.tools, **added}
        return agent, prompt


class PreparationFailed(Exception):
    """A reason not to run (a required source failed): the run fails with this code and message."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
