"""GitHub: issues and pull requests of a repository (`GET /repos/{owner}/{repo}/issues`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agentplatform.sdk.context.base import ContextError, ContextItem
from agentplatform.sdk.context.http import RestSource

PAGE_SIZE = 100
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class GitHubContext(RestSource):
    """Issues and pull requests, most recently updated first.

    Args:
        repo: "owner/name".
        state: "open", "closed" or "all".
        include: "issues", "pulls" or "both".
        labels: Only items with all these labels.
        since_hours: Only items updated in the last hours.
        max_items: At most this many.
        token / token_env: `GITHUB_TOKEN` by default.
        base_url: `https://api.github.com`, or `https://github.example.com/api/v3` for
            GitHub Enterprise Server.
    """

    kind = "github"
    default_base_url = "https://api.github.com"
    default_env = "GITHUB_TOKEN"

    def __init__(
        self,
        repo: str,
        *,
        state: Literal["open", "closed", "all"] = "open",
        include: Literal["issues", "pulls", "both"] = "both",
        labels: list[str] | None = None,
        since_hours: float | None = None,
        max_items: int = 50,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not isinstance(repo, str) or not _REPO.match(repo):
            raise ValueError('repo must be "owner/name"')
        if state not in ("open", "closed", "all") or include not in ("issues", "pulls", "both"):
            raise ValueError('state is "open", "closed" or "all"; include is "issues", "pulls" or "both"')
        self.repo = repo
        self.state = state
        self.include = include
        self.labels = list(labels or [])
        self.since_hours = since_hours
        self.max_items = max_items

    def default_name(self) -> str:
        return f"github:{self.repo}"

    async def fetch(self) -> list[ContextItem]:
        params: dict[str, Any] | None = {
            "state": self.state,
            "sort": "updated",
            "direction": "desc",
            "per_page": PAGE_SIZE,
        }
        if self.labels and params is not None:
            params["labels"] = ",".join(self.labels)
        if self.since_hours and params is not None:
            params["since"] = (datetime.now(UTC) - timedelta(hours=self.since_hours)).isoformat()
        found: list[dict[str, Any]] = []
        url = f"/repos/{self.repo}/issues"
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        async with self.client(headers) as client:
            while len(found) < self.max_items:
                response = await client.request("GET", url, params=params)
                found += [item for item in response.json() if self._wanted(item)]
                following = response.links.get("next", {}).get("url")
                if not following:
                    break
                if not self.same_origin(following):
                    raise ContextError("github: a next link points at another server; not followed")
                url, params = following, None  # the Link URL carries the query and the page
        return [self._item(item) for item in found[: self.max_items]]

    def _wanted(self, item: dict[str, Any]) -> bool:
        is_pull = "pull_request" in item
        return self.include == "both" or (self.include == "pulls") == is_pull

    def _item(self, item: dict[str, Any]) -> ContextItem:
        kind = "pull request" if "pull_request" in item else "issue"
        labels = ", ".join(label.get("name", "") for label in item.get("labels", []) if isinstance(label, dict))
        lines = [
            f"Type: {kind}",
            f"State: {item.get('state', '')}",
            f"Author: {(item.get('user') or {}).get('login', '')}",
            f"Updated: {item.get('updated_at', '')}",
        ]
        if labels:
            lines.append(f"Labels: {labels}")
        if item.get("body"):
            lines += ["", str(item["body"])]
        return ContextItem(
            title=f"#{item.get('number')} {item.get('title', '')}",
            text="\n".join(lines),
            url=str(item.get("html_url", "")),
            metadata={"number": item.get("number"), "kind": kind},
        )
