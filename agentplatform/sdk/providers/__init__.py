"""Model providers: OpenAI-compatible, Anthropic, and the offline demo model."""

from __future__ import annotations

from typing import Any

from agentplatform.sdk.models import ModelProvider

PROVIDERS = ("openai", "anthropic", "demo")


def resolve_model(spec: str | ModelProvider, **options: Any) -> ModelProvider:
    """A provider from `"provider:model"` (or a provider object, returned as is).

    `options` (timeout, max_retries, base_url, api_key) go to the provider's constructor.
    """
    if not isinstance(spec, str):
        return spec
    provider, _, model = spec.partition(":")
    if provider == "demo":
        from agentplatform.sdk.providers.demo import DemoModel  # noqa: PLC0415  # SDKs load on demand

        return DemoModel(model or "demo")
    if not model:
        raise ValueError(f"model {spec!r} must look like 'provider:model', e.g. 'openai:gpt-4o-mini'")
    if provider == "openai":
        from agentplatform.sdk.providers.openai import OpenAIModel  # noqa: PLC0415  # SDKs load on demand

        return OpenAIModel(model, **options)
    if provider == "anthropic":
        from agentplatform.sdk.providers.anthropic import AnthropicModel  # noqa: PLC0415  # SDKs load on demand

        return AnthropicModel(model, **options)
    raise ValueError(f"unknown model provider {provider!r} in {spec!r}; known: {', '.join(PROVIDERS)}")
