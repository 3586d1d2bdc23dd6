"""Fetching an agent's sources: concurrently (asyncio), each within its own timeout, through
an optional cache; then rendering them into one block of the system prompt.

A source that fails or times out is recorded with its error and skipped (rendered as
unavailable). A *required* one that fails makes `ContextBundle.required_failures` non-empty:
the platform then fails the run (`context_unavailable`) rather than run it without.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from agentplatform.sdk import telemetry
from agentplatform.sdk.context.base import Collected, ContextError, ContextItem, ContextProvider, ToolDefinition
from agentplatform.sdk.context.cache import ContextCache
from agentplatform.sdk.context.render import RenderedSource, join_sources, render_source

logger = logging.getLogger(__name__)
T = TypeVar("T")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class SourceResult:
    """One source's outcome for one run: what it fetched (or why not), how long, from where."""

    provider: ContextProvider
    items: tuple[ContextItem, ...] = ()
    tools: tuple[ToolDefinition, ...] = ()
    fetched_at: datetime | None = None
    duration_ms: float = 0.0
    cache_hit: bool = False
    error: str = ""
    error_code: str = ""  # "timeout" or "error" when the fetch failed
    rendered: RenderedSource = field(default_factory=lambda: RenderedSource("", 0, False))

    @property
    def ok(self) -> bool:
        return not self.error_code

    @property
    def name(self) -> str:
        return self.provider.name


@dataclass(frozen=True)
class ContextBundle:
    """Every source's result, in the agent's order, and the text injected into the prompt."""

    results: tuple[SourceResult, ...]

    @property
    def text(self) -> str:
        return join_sources(result.rendered.text for result in self.results)

    @property
    def required_failures(self) -> list[SourceResult]:
        return [r for r in self.results if not r.ok and r.provider.required]


def redact(text: str, secrets: Sequence[str]) -> str:
    """Replace every credential value in `text` (longest first) with a marker."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _payload(collected: Collected, fetched_at: datetime) -> dict[str, Any]:
    return {
        "fetched_at": fetched_at.isoformat(),
        "items": [item.to_json() for item in collected.items],
        "tools": [tool.to_json() for tool in collected.tools],
    }


def _from_payload(provider: ContextProvider, payload: dict[str, Any], started: float) -> SourceResult:
    return _finished(
        provider,
        items=tuple(ContextItem.from_json(item) for item in payload["items"]),
        tools=tuple(ToolDefinition.from_json(tool) for tool in payload["tools"]),
        fetched_at=datetime.fromisoformat(payload["fetched_at"]),
        started=started,
        cache_hit=True,
    )


def _finished(provider: ContextProvider, *, started: float, **fields: Any) -> SourceResult:
    failed = bool(fields.get("error_code"))
    items = fields.get("items", ())
    rendered = render_source(
        provider.name,
        provider.kind,
        items,
        fetched_at=fields.get("fetched_at"),
        max_chars=provider.max_chars,
        failed=failed,
    )
    secrets = provider.secrets()
    if secrets:
        rendered = RenderedSource(redact(rendered.text, secrets), rendered.items_shown, rendered.truncated)
    duration_ms = (time.perf_counter() - started) * 1000
    return SourceResult(provider, duration_ms=duration_ms, rendered=rendered, **fields)


async def _fetch_one(provider: ContextProvider) -> SourceResult:
    started = time.perf_counter()
    try:
        collected = await asyncio.wait_for(provider.collect(), provider.timeout)
    except TimeoutError:
        return _failed(provider, started, "timeout", f"timed out after {provider.timeout:g}s")
    except ContextError as exc:
        return _failed(provider, started, "error", str(exc))
    except Exception as exc:  # noqa: BLE001  # a provider is anyone's code: its failure is the source's, not the run's
        return _failed(provider, started, "error", f"{type(exc).__name__}: {exc}")
    fetched_at = datetime.now(UTC)
    return _finished(
        provider,
        items=tuple(collected.items),
        tools=tuple(collected.tools),
        fetched_at=fetched_at,
        started=started,
    )


def _failed(provider: ContextProvider, started: float, code: str, message: str) -> SourceResult:
    message = redact(message, provider.secrets())[:1000]
    logger.warning("context source %r failed (%s): %s", provider.name, code, message)
    return _finished(provider, started=started, error=message, error_code=code)


def _cache_read(cache: ContextCache | None, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    if cache is None or not keys:
        return {}
    try:
        return cache.get_many(keys)
    except Exception as exc:  # noqa: BLE001  # a cache that is down makes every source a miss, not a failure
        logger.warning("context cache unavailable for reads: %s", type(exc).__name__)
        return {}


def _cache_write(cache: ContextCache | None, results: Sequence[SourceResult], keys: dict[int, str]) -> None:
    entries = {
        keys[index]: (_payload(Collected(r.items, r.tools), r.fetched_at), r.provider.cache_ttl)
        for index, r in enumerate(results)
        if index in keys and r.ok and not r.cache_hit and r.fetched_at is not None
    }
    if cache is None or not entries:
        return
    try:
        cache.set_many(entries)
    except Exception as exc:  # noqa: BLE001  # as above: caching is an optimisation
        logger.warning("context cache unavailable for writes: %s", type(exc).__name__)


async def fetch_sources(
    providers: Sequence[ContextProvider],
    *,
    cache: ContextCache | None = None,
    use_cache: bool = True,
    concurrent: bool = True,
) -> ContextBundle:
    """Fetch every source (concurrently unless `concurrent=False`), reading and filling the
    cache for sources with a `cache_ttl`; `use_cache=False` fetches afresh and stores nothing."""
    started = time.perf_counter()
    cache = cache if use_cache else None
    keys = {index: p.cache_key() for index, p in enumerate(providers) if p.cache_ttl > 0 and cache is not None}
    cached = _cache_read(cache, list(keys.values()))

    async def one(index: int, provider: ContextProvider) -> SourceResult:
        with telemetry.context_fetch(provider.kind, provider.name) as traced:
            payload = cached.get(keys.get(index, ""))
            if payload is not None:
                result = _from_payload(provider, payload, time.perf_counter())
            else:
                result = await _fetch_one(provider)
            traced.fetched(
                items=len(result.items), cache_hit=result.cache_hit, error=result.error, text=result.rendered.text
            )
            return result

    if concurrent:
        results = await asyncio.gather(*(one(i, p) for i, p in enumerate(providers)))
    else:
        results = [await one(i, p) for i, p in enumerate(providers)]
    _cache_write(cache, results, keys)
    logger.debug("fetched %d context sources in %.1f ms", len(providers), (time.perf_counter() - started) * 1000)
    return ContextBundle(tuple(results))


def fetch_context(
    providers: Sequence[ContextProvider],
    *,
    cache: ContextCache | None = None,
    use_cache: bool = True,
    concurrent: bool = True,
) -> ContextBundle:
    """`fetch_sources` for synchronous code (a worker thread, a view, a script)."""
    return run_sync(fetch_sources(providers, cache=cache, use_cache=use_cache, concurrent=concurrent))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already
    runs an event loop (then on a thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001  # handed back to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="context-fetch")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
