"""Agents by reference: `"package.module:attr"` or `"path/to/file.py:attr"`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from agentplatform.sdk.agent import Agent


class AgentLoadError(Exception):
    pass


def _load_file(path: Path) -> object:
    module_name = f"agentplatform_user_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AgentLoadError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the script's own imports, as when it runs
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_agents(reference: str) -> list[Agent]:
    """The agent (or list of agents) that a reference names."""
    target, sep, attr = reference.strip().rpartition(":")
    if not sep or not target or not attr:
        raise AgentLoadError(f"agent reference {reference!r} must look like 'module:attr' or 'file.py:attr'")
    try:
        module = _load_file(Path(target).resolve()) if target.endswith(".py") else importlib.import_module(target)
    except (ImportError, OSError) as exc:
        raise AgentLoadError(f"cannot import {target!r} for agent reference {reference!r}: {exc}") from exc
    value = getattr(module, attr, None)
    agents = value if isinstance(value, list | tuple) else [value]
    if not agents or not all(isinstance(a, Agent) for a in agents):
        raise AgentLoadError(f"{reference!r} is not an Agent (or a list of agents)")
    return list(agents)


def reference_for(agent: Agent) -> str:
    """A reference another process can load: where a module-level name holds this agent."""
    for module_name, module in list(sys.modules.items()):
        for attr, value in list(vars(module).items()) if module is not None else ():
            if value is agent:
                if module_name == "__main__":
                    path = getattr(module, "__file__", None)
                    if path is None:
                        break
                    return f"{Path(path).resolve()}:{attr}"
                return f"{module_name}:{attr}"
    raise AgentLoadError(
        f"agent {agent.name!r} must be bound to a module-level name (e.g. `agent = Agent(...)`) to be served"
    )
