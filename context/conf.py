"""The context app's knobs (`settings.AGENTPLATFORM_CONTEXT`), read through one typed object."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


@dataclass(frozen=True)
class ContextSettings:
    PROVIDERS: list[str] = field(default_factory=list)  # extra provider classes operators may bind
    FILE_ROOTS: list[str] = field(default_factory=list)  # where FileContext bound in the admin may read
    MCP_COMMANDS: list[str] = field(default_factory=list)  # programs a stdio MCPContext bound in the admin may run
    ENCRYPTION_KEY: str = ""  # a Fernet key for stored credentials; blank: derived from SECRET_KEY
    CACHE: bool = True  # cache fetched context in Redis (REDIS_URL) for sources with a cache TTL


@functools.cache
def context_settings() -> ContextSettings:
    configured: dict[str, Any] = getattr(settings, "AGENTPLATFORM_CONTEXT", {})
    unknown = set(configured) - {f.name for f in fields(ContextSettings)}
    if unknown:
        raise ImproperlyConfigured(f"unknown AGENTPLATFORM_CONTEXT settings: {', '.join(sorted(unknown))}")
    return ContextSettings(**configured)


def _reset(*, setting: str, **_: Any) -> None:
    if setting in ("AGENTPLATFORM_CONTEXT", "SECRET_KEY"):
        context_settings.cache_clear()


setting_changed.connect(_reset)
