"""What the SDK-backed providers share: settings, and the API key from argument or env."""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

import httpx2

from agentplatform.sdk.models import ProviderError


class SDKModel:
    provider: ClassVar[str]
    key_variable: ClassVar[str]
    key_hint: ClassVar[str] = ""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        connections: int = 100,
    ) -> None:
        self.model = model
        self.label = f"{self.provider}:{model}"
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.connections = connections  # the async client's pool: at least the runs that may call at once
        self._loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        """Close the SDK client's connection pool, if one was opened."""
        client = self.__dict__.pop("client", None)  # the subclasses' cached_property
        if client is not None:
            client.close()
        async_client = self.__dict__.pop("async_client", None)
        loop, self._loop = self._loop, None
        if async_client is not None and loop is not None and not loop.is_closed():
            # Its connections belong to the loop that opened them: closed there.
            asyncio.run_coroutine_threadsafe(async_client.close(), loop)

    def on_loop(self) -> None:
        """Called where the async client is made: the loop it will belong to."""
        self._loop = asyncio.get_running_loop()

    def http_limits(self) -> httpx2.Limits:
        """The async client's pool, sized so that it never caps how many runs wait at once."""
        return httpx2.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)

    def resolved_api_key(self) -> str:
        key = self.api_key or os.environ.get(self.key_variable)
        if not key:
            raise ProviderError(self.label, f"no API key: set {self.key_variable}{self.key_hint}")
        return key
