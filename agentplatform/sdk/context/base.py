"""The base class every context source implements, and the values sources return.

A provider fetches *items* (a title, text, a URL, metadata) before a run; the platform
fetches every source of an agent concurrently, renders the items into the system prompt
within each source's budget, and records what it injected. Writing a provider:

    class WeatherContext(ContextProvider):
        kind = "weather"

        def __init__(self, city: str, **options: Any) -> None:
            super().__init__(**options)
            self.city = city

        async def fetch(self) -> list[ContextItem]:
            return [ContextItem(title=f"Weather in {self.city}", text="sunny, 21 C")]

`fetch` is a coroutine: await network calls (httpx), and run blocking work with
`asyncio.to_thread`. Raise `ContextError` with a message safe to show an operator. Public
attributes are the configuration (they make the cache key); keep state in `_private` ones.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, ClassVar

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_CHARS = 8_000
CHARS_PER_TOKEN = 4  # the usual approximation for English text; budgets in tokens use it
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:#@/ -]{0,99}$")
# Attributes that shape rendering or scheduling, not what is fetched: not part of the cache key.
_NOT_IN_KEY = frozenset({"name", "timeout", "max_chars", "cache_ttl", "required"})


class ContextError(Exception):
    """A source could not be fetched. The message is recorded and shown: no secrets in it."""


@dataclass(frozen=True)
class ContextItem:
    """One piece of context: a message, a page, an issue, a row, a file."""

    title: str = ""
    text: str = ""
    url: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "text": self.text, "url": self.url, "metadata": dict(self.metadata)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContextItem:
        return cls(str(data["title"]), str(data["text"]), str(data["url"]), dict(data["metadata"]))


@dataclass(frozen=True)
class ToolDefinition:
    """A tool a source offers the agent (an MCP server's), as discovered: cacheable JSON."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolDefinition:
        return cls(str(data["name"]), str(data["description"]), dict(data["parameters"]))


@dataclass(frozen=True)
class Collected:
    """What one fetch of a source produced."""

    items: Sequence[ContextItem] = ()
    tools: Sequence[ToolDefinition] = ()


class Secret:
    """A credential held in memory that never shows itself (repr, str, logs, cache keys)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short one-way digest: tells two secrets apart without revealing either."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def as_secret(value: Secret | str | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    return Secret(value)


def env_name(value: str | None, what: str) -> str | None:
    """Check the name of an environment variable (the name, never the value, is configured)."""
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(f"{what} must be the name of an environment variable, got {value!r}")
    return value


def resolve_credential(secret: Secret | None, env: str | None, *, what: str) -> str:
    """The credential's value, from a Secret or the environment variable named `env`."""
    if secret is not None:
        return secret.reveal()
    if env is None:
        raise ContextError(f"no {what} configured")
    value = os.environ.get(env, "")
    if not value:
        raise ContextError(f"the environment variable {env} (the {what}) is not set")
    return value


class ContextProvider:
    """A source of context fetched before each run and rendered into the system prompt.

    Options every source takes (keyword-only):
        name: how the source is labelled in the prompt and the record (default: its kind).
        timeout: seconds the fetch may take; past it the source counts as failed.
        max_chars / max_tokens: the budget of the rendered items (tokens are approximate,
            4 characters each); past it, items are cut and a marker says what was left out.
        cache_ttl: seconds a successful fetch is reused (0: fetched for every run).
        required: a required source that fails fails the run; an optional one is skipped.
    """

    kind: ClassVar[str] = "custom"
    # The constructor argument that holds this provider's credential (`token`, `url`, ...):
    # it takes a Secret (or str) as `<arg>=` or an environment variable's name as `<arg>_env=`.
    credential_arg: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_chars: int | None = None,
        max_tokens: int | None = None,
        cache_ttl: float = 0.0,
        required: bool = False,
    ) -> None:
        if name is not None and not _NAME.match(name):
            raise ValueError(f"context source name {name!r}: 1-100 letters, digits and _.:#@/- or spaces")
        if not (isinstance(timeout, int | float) and 0 < timeout <= 3600):  # noqa: PLR2004  # an hour at most
            raise ValueError("timeout must be a number of seconds, more than 0")
        if max_chars is not None and max_tokens is not None:
            raise ValueError("give max_chars or max_tokens, not both")
        budget = max_chars if max_tokens is None else max_tokens * CHARS_PER_TOKEN
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise ValueError("max_chars and max_tokens must be positive integers")
        if not (isinstance(cache_ttl, int | float) and cache_ttl >= 0):
            raise ValueError("cache_ttl must be a number of seconds, 0 or more")
        self._name = name
        self.timeout = float(timeout)
        self.max_chars = budget if budget is not None else DEFAULT_MAX_CHARS
        self.cache_ttl = float(cache_ttl)
        self.required = bool(required)

    @property
    def name(self) -> str:
        return self._name or self.default_name()

    def default_name(self) -> str:
        return self.kind

    @property
    def max_tokens(self) -> int:
        return math.ceil(self.max_chars / CHARS_PER_TOKEN)

    async def fetch(self) -> list[ContextItem]:
        """The source's items now. Override this (or `collect`, to offer tools as well)."""
        raise NotImplementedError(f"{type(self).__name__} must implement fetch()")

    async def collect(self) -> Collected:
        """Items, and tool definitions for sources that offer tools (MCP servers)."""
        return Collected(items=await self.fetch())

    def build_tools(self, definitions: Sequence[ToolDefinition]) -> list[Any]:
        """Agent tools (`agentplatform.Tool`) for discovered definitions; most sources have none."""
        return []

    def secrets(self) -> list[str]:
        """Credential values this source uses, so that they can be scrubbed from any message."""
        values: list[str] = []
        for attribute, value in vars(self).items():
            if isinstance(value, Secret):
                values.append(value.reveal())
            elif attribute.endswith("_env") and isinstance(value, str) and os.environ.get(value):
                values.append(os.environ[value])
        return values

    def cache_key(self) -> str:
        """Derived from the class and its public attributes, which are its configuration
        (keep any state in `_private` ones); credentials count only as fingerprints."""
        material = {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_") and k not in _NOT_IN_KEY},
        }
        encoded = json.dumps(material, sort_keys=True, default=_key_default)
        return hashlib.sha256(encoded.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _key_default(value: Any) -> Any:
    if isinstance(value, Secret):
        return f"secret:{value.fingerprint()}"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(map(str, value))
    if isinstance(value, PurePath):
        return str(value)
    return repr(value)
