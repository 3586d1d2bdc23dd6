"""Agents: mirroring the code's agents into rows, and what a run may use."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.tools import ToolPermission
from agents import selectors
from agents.errors import (
    AgentDisabled,
    AgentUnavailable,
)
from agents.models import (
    Agent,
    Tool,
)
from agents.registry import code_agents


def sync_agents(*, using: str = "default") -> dict[str, int]:
    """Mirror the code's agents and tools into rows, keeping operators' overrides."""
    agents = code_agents()
    with transaction.atomic(using=using):
        for agent in agents.values():
            row, _ = Agent.objects.using(using).update_or_create(
                name=agent.name,
                defaults={
                    "description": agent.description,
                    "code_model": agent.model_label,
                    "code_instructions": agent.instructions,
                    "custom_turn": agent.overrides_run,
                    "registered": True,
                },
            )
            for tool in agent.tools.values():
                Tool.objects.using(using).update_or_create(
                    agent=row,
                    name=tool.name,
                    defaults={
                        "description": tool.description,
                        "parameters": tool.parameters,
                        "code_permission": tool.permission.value,
                        "registered": True,
                    },
                )
            Tool.objects.using(using).filter(agent=row).exclude(name__in=list(agent.tools)).update(registered=False)
        retired = Agent.objects.using(using).exclude(name__in=list(agents)).update(registered=False)
    return {"agents": len(agents), "retired": retired}


def tool_permissions(agent: Agent, code_agent: CodeAgent) -> tuple[dict[str, ToolPermission], dict[str, list[Any]]]:
    """Each code tool's permission (the operator's override, else the code's default), and
    the argument conditions operators set on some of them."""
    policies = selectors.tool_policies(agent)
    permissions = {
        name: ToolPermission(policies.get(name, ("", []))[0] or tool.permission.value)
        for name, tool in code_agent.tools.items()
    }
    return permissions, {name: rules for name, (_, rules) in policies.items() if rules}


def runnable(agent: Agent) -> CodeAgent:
    if not agent.enabled:
        raise AgentDisabled(f"Agent {agent.name!r} is disabled by an operator.")
    code_agent = code_agents().get(agent.name)
    if code_agent is None:
        raise AgentUnavailable(f"Agent {agent.name!r} is not loaded in this deployment's code.")
    return code_agent
