"""Caches for fetched context: in this process, or in Redis (shared by all workers).

A cache stores what a source fetched (its items and tool definitions, as JSON) under the
source's cache key for the source's `cache_ttl`. Rendering happens after the cache, so a
budget change applies to cached items at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import redis

KEY_PREFIX = "agentplatform:context:"


class ContextCache(Protocol):
    """Batch operations, so that a run's sources cost one round trip to read and one to write."""

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The cached payloads of the keys that have one."""
        ...

    def set_many(self, entries: Mapping[str, tuple[dict[str, Any], float]]) -> None:
        """Store payloads, each with its time to live in seconds."""
        ...


class MemoryCache:
    """A bounded in-process cache (least recently used entries go first). Thread-safe."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    continue
                expires, payload = entry
                if expires <= now:
                    del self._entries[key]
                    continue
                self._entries.move_to_end(key)
                found[key] = payload
        return found

    def set_many(self, entries: Mapping[str, tuple[dict[str, Any], float]]) -> None:
        now = time.monotonic()
        with self._lock:
            for key, (payload, ttl) in entries.items():
                self._entries[key] = (now + ttl, payload)
                self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RedisCache:
    """Shared by every process that uses the same Redis (`redis://...`)."""

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, socket_timeout: float = 2.0) -> None:
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout)

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        values = self._client.mget([self.prefix + key for key in keys])
        return {key: json.loads(value) for key, value in zip(keys, values, strict=True) if value is not None}

    def set_many(self, entries: Mapping[str, tuple[dict[str, Any], float]]) -> None:
        if not entries:
            return
        with self._client.pipeline(transaction=False) as pipe:
            for key, (payload, ttl) in entries.items():
                pipe.set(self.prefix + key, json.dumps(payload), px=max(1, int(ttl * 1000)))
            pipe.execute()

    def close(self) -> None:
        self._client.close()
