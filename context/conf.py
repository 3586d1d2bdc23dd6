"""The context app's knobs (`settings.AGENTPLATFORM_CONTEXT`), read through one typed object.

The defaults are here and nowhere else. Each field's metadata names its environment variable
(`env`), the least value it takes (`minimum`) and what it means (`help`): `settings.py` passes
only what the environment sets (`agentplatform.appsettings.from_environment`), and the
configuration reference in the docs is generated from them (`scripts/config_reference.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentplatform.appsettings import AppSettings


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
    ENCRYPTION_KEY: list[str] = field(
        default_factory=list,
        metadata={
            "env": "AGENTPLATFORM_ENCRYPTION_KEY",
            "help": (
                "comma-separated Fernet keys encrypting credentials stored in the database: the first "
                "encrypts, all decrypt"
            ),
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


context_settings = AppSettings(
    ContextSettings, "AGENTPLATFORM_CONTEXT", reset_on=("SECRET_KEY", "SECRET_KEY_FALLBACKS")
)
