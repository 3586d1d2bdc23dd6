"""What the SDK-backed providers share: settings, and the API key from argument or env."""

from __future__ import annotations

import os
from typing import ClassVar

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
    ) -> None:
        self.model = model
        self.label = f"{self.provider}:{model}"
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries

    def close(self) -> None:
        """Close the SDK client's connection pool, if one was opened."""
        client = self.__dict__.pop("client", None)  # the subclasses' cached_property
        if client is not None:
            client.close()

    def resolved_api_key(self) -> str:
        key = self.api_key or os.environ.get(self.key_variable)
        if not key:
            raise ProviderError(self.label, f"no API key: set {self.key_variable}{self.key_hint}")
        return key
