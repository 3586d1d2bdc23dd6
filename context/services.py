"""Context for runs: an agent's sources, fetched and recorded before each run; previews;
saving sources bound in the admin with their credentials."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from agentplatform import sql
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import TargetType
from agentplatform.audit.services import as_stored, record_change, snapshot
from agentplatform.sdk.agent import Agent as CodeAgent
from agentplatform.sdk.context import (
    ContextBundle,
    ContextCache,
    ContextError,
    ContextItem,
    ContextProvider,
    FileContext,
    MCPContext,
    RedisCache,
    Secret,
    SourceResult,
    fetch_context,
    fetch_sources,
)
from context import crypto, providers
from context.conf import context_settings
from context.errors import InvalidContextSource
from context.models import ContextInjection, ContextSource, InjectionStatus, Origin
from context.preparation import Preparation, PreparationFailed

Database = Callable[..., Awaitable[Any]]  # runs a sync database step off the event loop

# Set from the ContextSource's own fields, not from its parameters.
RESERVED = frozenset({"name", "timeout", "max_chars", "max_tokens", "cache_ttl", "required", "allowed_roots"})
# What the audit log records of a source: a stored credential only as "[redacted]" (or "" once removed).
AUDITED_FIELDS = (
    "agent",
    "name",
    "provider",
    "parameters",
    "enabled",
    "required",
    "position",
    "timeout_seconds",
    "max_chars",
    "cache_ttl_seconds",
    "credential_env",
    "credential_encrypted",
)
# A parameter named like this is (or holds) a credential: it belongs in the credential fields.
_SECRET_NAME = re.compile(r"token|secret|passw|authorization|cookie|api[-_]?key|credential|private", re.IGNORECASE)


@dataclass(frozen=True)
class BoundSource:
    origin: Origin
    provider: ContextProvider
    row: ContextSource | None = None


class UnusableSource(ContextProvider):
    """Stands in for a bound source that cannot be built: it fails with the reason."""

    kind = "unusable"

    def __init__(self, reason: str, **options: Any) -> None:
        super().__init__(**options)
        self._reason = reason

    async def fetch(self) -> list[ContextItem]:
        raise ContextError(self._reason)


def _check_parameters(parameters: Any, credential_arg: str | None) -> None:
    if not isinstance(parameters, Mapping):
        raise InvalidContextSource("parameters must be a JSON object.", details={"field": "parameters"})
    reserved = sorted(RESERVED & parameters.keys())
    if reserved:
        message = f"Set {', '.join(reserved)} with the source's own fields, not in parameters."
        raise InvalidContextSource(message, details={"field": "parameters"})
    credential_keys = {credential_arg, f"{credential_arg}_env"} if credential_arg else set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if str(key) in credential_keys or _SECRET_NAME.search(str(key)):
                    message = f"{key!r} looks like a credential: use the credential fields, which are never shown."
                    raise InvalidContextSource(message, details={"field": "parameters"})
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(parameters)


def _check_command(command: Any) -> None:
    """A stdio MCP server bound in the admin runs a program on the workers: only the ones listed."""
    if command is None:
        return
    program = command[0] if isinstance(command, list) and command else command
    if program not in context_settings().MCP_COMMANDS:
        message = f"{program!r} is not in AGENTPLATFORM_CONTEXT_MCP_COMMANDS, the programs MCP servers may run as."
        raise InvalidContextSource(message, details={"field": "parameters"})


def _credential(cls: type[ContextProvider], source: ContextSource, secret: str | None) -> dict[str, Any]:
    arg = cls.credential_arg
    given = bool(source.credential_env or secret or source.credential_encrypted)
    if not given:
        return {}
    if arg is None:
        raise InvalidContextSource(f"{cls.__name__} takes no credential.", details={"field": "credential"})
    if source.credential_env:
        return {f"{arg}_env": source.credential_env}
    if secret is not None:
        return {arg: Secret(secret)}
    try:
        return {arg: Secret(crypto.decrypt(source.credential_encrypted))}
    except crypto.CredentialUnreadable as exc:
        raise InvalidContextSource(f"{exc}; enter it again.", details={"field": "credential"}) from None


def build_provider(source: ContextSource, *, secret: str | None = None) -> ContextProvider:
    """The provider a bound source stands for (`secret`: a credential about to be stored)."""
    cls = providers.provider_class(source.provider)
    _check_parameters(source.parameters, cls.credential_arg)
    kwargs: dict[str, Any] = {
        **source.parameters,
        "name": source.name,
        "timeout": source.timeout_seconds,
        "max_chars": source.max_chars,
        "cache_ttl": source.cache_ttl_seconds,
        "required": source.required,
        **_credential(cls, source, secret),
    }
    if issubclass(cls, FileContext):
        kwargs["allowed_roots"] = context_settings().FILE_ROOTS  # none configured: no file may be bound
    if issubclass(cls, MCPContext):
        _check_command(source.parameters.get("command"))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidContextSource(f"{cls.__name__}: {exc}", details={"field": "parameters"}) from None


def check_source(source: ContextSource, *, secret: str = "", clear_secret: bool = False) -> None:
    """Raise InvalidContextSource unless the source, saved this way, builds its provider.

    An environment variable and a stored secret exclude each other: naming a variable drops
    a stored secret, and a new secret with a variable named is refused.
    """
    if secret and source.credential_env:
        message = "Give the credential as an environment variable or as a secret to store, not both."
        raise InvalidContextSource(message, details={"field": "credential"})
    probe = copy.copy(source)
    if clear_secret or source.credential_env:
        probe.credential_encrypted = ""
    build_provider(probe, secret=secret or None)


def save_source(source: ContextSource, *, actor: Actor, secret: str = "", clear_secret: bool = False) -> ContextSource:
    """Check a source against its provider, then save it; `secret` is stored encrypted."""
    check_source(source, secret=secret, clear_secret=clear_secret)
    if clear_secret or source.credential_env:
        source.credential_encrypted = ""
    if secret:
        source.credential_encrypted = crypto.encrypt(secret)
    with transaction.atomic():
        before = as_stored(source, AUDITED_FIELDS)
        source.save()
        record_change(actor, TargetType.CONTEXT_SOURCE, source, before, snapshot(source, AUDITED_FIELDS))
    return source


def delete_source(source: ContextSource, *, actor: Actor) -> None:
    """Unbind a source; what runs were given by it stays in their record."""
    with transaction.atomic():
        record_change(actor, TargetType.CONTEXT_SOURCE, source, snapshot(source, AUDITED_FIELDS), None)
        source.delete()


def agent_sources(agent_id: int, code_agent: CodeAgent) -> list[BoundSource]:
    """The code's sources, then the enabled ones bound in the admin (one query)."""
    bound = [BoundSource(Origin.CODE, provider) for provider in code_agent.context]
    for row in sql.instances(
        ContextSource, _bound_sql(), sql.values(ContextSource, ("agent", agent_id), ("enabled", True))
    ):
        try:
            provider = build_provider(row)
        except InvalidContextSource as exc:
            options = {"name": row.name, "required": row.required}
            provider = UnusableSource(f"misconfigured: {exc.message}", **options)
        bound.append(BoundSource(Origin.ADMIN, provider, row))
    return bound


@functools.cache
def _bound_sql() -> str:
    """An agent's enabled sources, in order: read for every run (SQL, see `agentplatform.sql`)."""
    table = sql.table(ContextSource)
    return (
        f"SELECT {sql.columns(ContextSource)} FROM {table} WHERE agent_id = %s AND enabled = %s ORDER BY position, name"  # noqa: S608
    )


@functools.cache
def _redis_cache(url: str) -> RedisCache:
    return RedisCache(url)  # one client (and pool) per process, made on first use


def context_cache() -> ContextCache | None:
    return _redis_cache(settings.REDIS_URL) if context_settings().CACHE else None


async def prepare_run(db: Database, run_id: UUID, agent_id: int, code_agent: CodeAgent) -> Preparation:
    """Before a run's turn (the agents app calls it, on its event loop): fetch the agent's
    sources, record what each gave, and hand the rendered context and any MCP tools to the
    run. `db` runs the database steps (the bound sources, the record) off the loop."""
    sources = await db(agent_sources, agent_id, code_agent)
    if not sources:
        return Preparation()
    bundle = await fetch_sources([s.provider for s in sources], cache=context_cache())
    return await db(_prepared, run_id, sources, bundle)


def _prepared(run_id: UUID, sources: list[BoundSource], bundle: ContextBundle) -> Preparation:
    tools = [_tools(result) for result in bundle.results]
    record_injections(run_id, sources, bundle, tools)
    failed = bundle.required_failures
    if failed:
        first = failed[0]
        message = f"The required context source {first.name!r} failed: {first.error}"
        raise PreparationFailed("context_unavailable", message, {"source": first.name, "error": first.error})
    return Preparation(bundle.text, tuple(tool for offered in tools for tool in offered))


def _tools(result: SourceResult) -> list[Any]:
    return result.provider.build_tools(result.tools) if result.ok and result.tools else []


def record_injections(run_id: UUID, sources: list[BoundSource], bundle: ContextBundle, tools: list[list[Any]]) -> None:
    """One row per source, after the rows of the run's earlier turns (a run resumed after an
    approval fetches its context again)."""
    earlier = ContextInjection.objects.filter(run_id=run_id).aggregate(last=Max("position"))["last"]
    start = 0 if earlier is None else earlier + 1
    rows = [
        ContextInjection(
            run_id=run_id,
            position=position,
            source=result.name,
            kind=result.provider.kind,
            origin=bound.origin,
            source_row=bound.row,
            status=InjectionStatus.OK if result.ok else InjectionStatus.FAILED,
            required=result.provider.required,
            item_count=len(result.items),
            items_shown=result.rendered.items_shown,
            chars=len(result.rendered.text),
            truncated=result.rendered.truncated,
            fetch_ms=round(result.duration_ms),
            cache_hit=result.cache_hit,
            fetched_at=result.fetched_at,
            error=result.error,
            tools=[tool.name for tool in offered],
        )
        for position, (bound, result, offered) in enumerate(zip(sources, bundle.results, tools, strict=True), start)
    ]
    ContextInjection.objects.bulk_create(rows)


@dataclass(frozen=True)
class Preview:
    """What a run would be given by one source now (fetched afresh, nothing cached or recorded)."""

    name: str
    kind: str
    rendered: str
    item_count: int
    items_shown: int
    chars: int
    truncated: bool
    fetch_ms: int
    fetched_at: datetime | None
    error: str
    tools: list[str] = field(default_factory=list)


def preview_source(source: ContextSource) -> Preview:
    """Fetch a bound source as a run would and render it (under the same header); a source
    that cannot be built raises InvalidContextSource."""
    provider = build_provider(source)
    result = fetch_context([provider], use_cache=False).results[0]
    return Preview(
        name=result.name,
        kind=provider.kind,
        rendered=ContextBundle((result,)).text,
        item_count=len(result.items),
        items_shown=result.rendered.items_shown,
        chars=len(result.rendered.text),
        truncated=result.rendered.truncated,
        fetch_ms=round(result.duration_ms),
        fetched_at=result.fetched_at,
        error=result.error,
        tools=[tool.name for tool in _tools(result)],
    )
