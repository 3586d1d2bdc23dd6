"""`serve(agent)`: the whole platform for some agents, on embedded defaults."""

from __future__ import annotations

import os
from collections.abc import Iterable

import django
from django.core.management import call_command

from agentplatform.sdk.agent import Agent
from agentplatform.sdk.loading import reference_for


def serve(agents: Agent | Iterable[Agent], *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate, then run the API, docs and admin for these agents until Ctrl-C or SIGTERM.

    The platform's processes load the agents by reference, so each agent must be bound to a
    module-level name in the calling script or module. Like `manage.py up`, it does not
    return: the calling process becomes the platform's supervisor (it exits with its code).
    """
    selected = [agents] if isinstance(agents, Agent) else list(agents)
    os.environ["AGENTPLATFORM_AGENTS"] = ",".join(reference_for(agent) for agent in selected)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")

    django.setup()
    call_command("up", host=host, port=port)
