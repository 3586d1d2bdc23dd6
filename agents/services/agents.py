"""Agents: mirroring the code's agents into rows, and what a run may use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.tools import Tool as CodeTool
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


def record_tools(agent: Agent, tools: Iterable[CodeTool]) -> None:
    """Mirror tools a run was given at run time (an MCP server's) as rows, as `sync_agents`
    does for the code's, so that operators see them and can override their permission."""
    tools = list(tools)
    if not tools:
        return
    rows = {row.name: row for row in Tool.objects.filter(agent=agent, name__in=[t.name for t in tools])}
    new, changed = [], []
    for tool in tools:
        values = {
            "description": tool.description,
            "parameters": tool.parameters,
            "code_permission": tool.permission.value,
            "registered": True,
        }
        row = rows.get(tool.name)
        if row is None:
            new.append(Tool(agent=agent, name=tool.name, **values))
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            changed.append(row)
    Tool.objects.bulk_create(new, ignore_conflicts=True)  # two runs may discover the same tool at once
    Tool.objects.bulk_update(changed, ["description", "parameters", "code_permission", "registered"])


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
