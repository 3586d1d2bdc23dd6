"""Slack: recent messages of channels (`conversations.history`, Web API)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agentplatform.sdk.context.base import ContextError, ContextItem
from agentplatform.sdk.context.http import RestClient, RestSource

PAGE_SIZE = 200
MAX_PAGES = 50


class SlackContext(RestSource):
    """Messages of the last `lookback_hours` in each channel, oldest first.

    Args:
        channels: Channel ids (`C0123ABC`) or names (`#support`, looked up with
            `conversations.list`).
        lookback_hours: How far back to read.
        max_messages: Per channel, the most recent ones are kept.
        workspace_url: e.g. `https://acme.slack.com`, to link each message.
        token / token_env: A bot token (`xoxb-...`) with `channels:history` (and
            `channels:read` for names); `SLACK_TOKEN` by default.
        base_url: `https://slack.com/api` unless overridden.
    """

    kind = "slack"
    default_base_url = "https://slack.com/api"
    default_env = "SLACK_TOKEN"

    def __init__(
        self,
        channels: Sequence[str],
        *,
        lookback_hours: float = 24,
        max_messages: int = 200,
        workspace_url: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if isinstance(channels, str) or not channels or not all(isinstance(c, str) and c for c in channels):
            raise ValueError("channels must be a list of channel ids or #names")
        if not (isinstance(lookback_hours, int | float) and lookback_hours > 0):
            raise ValueError("lookback_hours must be a positive number")
        self.channels = list(channels)
        self.lookback_hours = float(lookback_hours)
        self.max_messages = max_messages
        self.workspace_url = workspace_url.rstrip("/") if workspace_url else None

    def default_name(self) -> str:
        return "slack:" + ",".join(self.channels)

    async def fetch(self) -> list[ContextItem]:
        async with self.client() as client:
            channels = await self._resolve(client)
            oldest = f"{time.time() - self.lookback_hours * 3600:.6f}"
            items: list[ContextItem] = []
            for label, channel_id in channels:
                items += await self._history(client, label, channel_id, oldest)
        return items

    async def _call(self, client: RestClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
        data = await client.json("GET", f"/{method}", params=params)
        if not isinstance(data, dict) or not data.get("ok"):
            error = data.get("error", "unknown_error") if isinstance(data, dict) else "not an object"
            raise ContextError(f"slack {method}: {error}")
        return data

    async def _resolve(self, client: RestClient) -> list[tuple[str, str]]:
        names = {c.removeprefix("#") for c in self.channels if c.startswith("#")}
        found: dict[str, str] = {}
        cursor = ""
        for _ in range(MAX_PAGES if names else 0):
            params = {"types": "public_channel,private_channel", "limit": PAGE_SIZE, "exclude_archived": "true"}
            data = await self._call(client, "conversations.list", {**params, **({"cursor": cursor} if cursor else {})})
            found.update({c["name"]: c["id"] for c in data.get("channels", []) if c.get("name") in names})
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor or names <= found.keys():
                break
        missing = sorted(names - found.keys())
        if missing:
            raise ContextError(f"slack: no channel named {', '.join('#' + m for m in missing)} is visible to the token")
        return [(c, found[c[1:]]) if c.startswith("#") else (c, c) for c in self.channels]

    async def _history(self, client: RestClient, label: str, channel_id: str, oldest: str) -> list[ContextItem]:
        messages: list[dict[str, Any]] = []
        cursor = ""
        while len(messages) < self.max_messages:
            params: dict[str, Any] = {"channel": channel_id, "oldest": oldest, "limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            data = await self._call(client, "conversations.history", params)
            messages += data.get("messages", [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not data.get("has_more") or not cursor:
                break
        newest_first = messages[: self.max_messages]
        return [self._item(label, channel_id, m) for m in reversed(newest_first)]

    def _item(self, label: str, channel_id: str, message: dict[str, Any]) -> ContextItem:
        ts = str(message.get("ts", "0"))
        when = datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M UTC")
        author = message.get("user") or message.get("username") or message.get("bot_id") or "unknown"
        link = f"{self.workspace_url}/archives/{channel_id}/p{ts.replace('.', '')}" if self.workspace_url else ""
        return ContextItem(
            title=f"{label} · {author} · {when}",
            text=str(message.get("text", "")),
            url=link,
            metadata={"ts": ts},
        )
