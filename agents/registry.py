"""The agents this deployment's code defines, loaded once per process from settings."""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from agentplatform.conf import platform_settings
from agentplatform.sdk.agent import Agent
from agentplatform.sdk.loading import AgentLoadError, load_agents
from agentplatform.sdk.models import ModelProvider
from agentplatform.sdk.providers import resolve_model


@functools.cache
def code_agents() -> dict[str, Agent]:
    """Agents named by `AGENTPLATFORM["AGENTS"]` (and the `AGENTPLATFORM_AGENTS` variable)."""
    agents: dict[str, Agent] = {}
    for reference in platform_settings().AGENTS:
        try:
            loaded = load_agents(reference)
        except AgentLoadError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
        for agent in loaded:
            if agent.name in agents and agents[agent.name] is not agent:
                raise ImproperlyConfigured(f"two configured agents are named {agent.name!r}")
            agents[agent.name] = agent
    return agents


class _Providers:
    """One provider (and so one HTTP client pool) per model spec per process."""

    def __init__(self) -> None:
        self._by_spec: dict[str, ModelProvider] = {}

    def get(self, spec: str) -> ModelProvider:
        if spec not in self._by_spec:
            conf = platform_settings()
            self._by_spec[spec] = resolve_model(
                spec, timeout=conf.MODEL_TIMEOUT, max_retries=conf.MODEL_MAX_RETRIES, connections=conf.RUN_CONCURRENCY
            )
        return self._by_spec[spec]

    def close(self) -> None:
        """Forget them, closing their connection pools (new settings make new ones)."""
        providers, self._by_spec = list(self._by_spec.values()), {}
        for provider in providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()


_providers = _Providers()


def model_provider(spec: str) -> ModelProvider:
    return _providers.get(spec)


def _reset(*, setting: str, **_: Any) -> None:
    if setting == "AGENTPLATFORM":
        code_agents.cache_clear()
        _providers.close()


setting_changed.connect(_reset)
