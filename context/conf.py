"""The context app's knobs (`settings.AGENTPLATFORM_CONTEXT`), read through one typed object.

Each field's metadata names its environment variable (`env`) and says what it means (`help`);
the configuration reference in the docs is generated from them (`scripts/config_reference.py`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


@dataclass(frozen=True)
class ContextSettings:
    PROVIDERS: list[str] = field(
        default_factory=list,
        metadata={
            "env": "AGENTPLATFORM_CONTEXT_PROVIDERS",
            "help": "extra context provider classes operators may bind in the admin, comma-separated import paths",
        },
    )
    FILE_ROOTS: list[str] = field(
        default_factory=list,
        metadata={
            "env": "AGENTPLATFORM_CONTEXT_FILE_ROOTS",
            "help": "directories `FileContext` sources bound in the admin may read (none: no files)",
        },
    )
    MCP_COMMANDS: list[str] = field(
        default_factory=list,
        metadata={
            "env": "AGENTPLATFORM_CONTEXT_MCP_COMMANDS",
            "help": (
                "programs a stdio `MCPContext` bound in the admin may run (e.g. `npx,uvx`; none: HTTP servers only)"
            ),
        },
    )
    ENCRYPTION_KEY: str = field(
        default="",
        metadata={
            "env": "AGENTPLATFORM_ENCRYPTION_KEY",
            "help": "a Fernet key for credentials stored in the database",
            "default": "derived from `DJANGO_SECRET_KEY`",
        },
    )
    CACHE: bool = field(
        default=True,
        metadata={
            "env": "AGENTPLATFORM_CONTEXT_CACHE",
            "help": "cache fetched context in Redis (`REDIS_URL`) for sources with a `cache_ttl`",
        },
    )


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
