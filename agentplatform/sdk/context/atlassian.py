"""Jira (JQL search) and Confluence (CQL search), Cloud or self-hosted (Server/Data Center).

Cloud authenticates with your account's email and an API token (HTTP Basic); self-hosted
servers with a personal access token (Bearer): give `email` for the former.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any, Literal

from agentplatform.sdk.context.base import ContextError, ContextItem
from agentplatform.sdk.context.http import RestClient, RestSource

PAGE_SIZE = 50
_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(markup: str) -> str:
    """Readable text out of HTML (Confluence's storage format)."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def adf_text(node: Any) -> str:
    """Readable text out of an Atlassian Document Format tree (Jira Cloud's rich text)."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if node.get("type") == "hardBreak":
        return "\n"
    inner = "".join(adf_text(child) for child in node.get("content", []))
    block = node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote", "rule")
    return inner + "\n" if block else inner


class _AtlassianSource(RestSource):
    def __init__(self, *, email: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.email = email

    def auth_headers(self) -> dict[str, str]:
        token = self.credential()
        if self.email:
            basic = base64.b64encode(f"{self.email}:{token}".encode()).decode()
            return {"Authorization": f"Basic {basic}", "Accept": "application/json"}
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


class JiraContext(_AtlassianSource):
    """Issues matching a JQL query.

    Args:
        jql: e.g. `project = SUP AND status != Done ORDER BY updated DESC`.
        base_url: Your site, e.g. `https://acme.atlassian.net` or `https://jira.example.com`.
        email: Cloud: the account's email (with an API token); omit for a self-hosted PAT.
        api: "cloud" uses `/rest/api/3/search/jql` (paged with nextPageToken); "server"
            uses `/rest/api/2/search` (paged with startAt/maxResults/total).
        fields: Issue fields to read and show.
        max_issues: At most this many issues.
        token / token_env: `JIRA_API_TOKEN` by default.
    """

    kind = "jira"
    default_env = "JIRA_API_TOKEN"

    def __init__(
        self,
        jql: str,
        *,
        api: Literal["cloud", "server"] = "cloud",
        fields: Sequence[str] = ("summary", "status", "assignee", "priority", "updated", "description"),
        max_issues: int = 50,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not isinstance(jql, str) or not jql.strip():
            raise ValueError("jql must be a JQL query")
        if api not in ("cloud", "server"):
            raise ValueError('api must be "cloud" or "server"')
        self.jql = jql
        self.api = api
        self.fields = list(fields)
        self.max_issues = max_issues

    async def fetch(self) -> list[ContextItem]:
        async with self.client() as client:
            issues = await (self._cloud(client) if self.api == "cloud" else self._server(client))
        return [self._item(issue) for issue in issues[: self.max_issues]]

    async def _cloud(self, client: RestClient) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = []
        token = ""
        while len(issues) < self.max_issues:
            params = {"jql": self.jql, "fields": ",".join(self.fields), "maxResults": PAGE_SIZE}
            data = await client.json(
                "GET", "/rest/api/3/search/jql", params={**params, **({"nextPageToken": token} if token else {})}
            )
            issues += data.get("issues", [])
            token = data.get("nextPageToken") or ""
            if data.get("isLast", not token) or not token:
                break
        return issues

    async def _server(self, client: RestClient) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = []
        while len(issues) < self.max_issues:
            params = {"jql": self.jql, "fields": ",".join(self.fields), "startAt": len(issues), "maxResults": PAGE_SIZE}
            data = await client.json("GET", "/rest/api/2/search", params=params)
            page = data.get("issues", [])
            issues += page
            if not page or len(issues) >= int(data.get("total", 0)):
                break
        return issues

    def _item(self, issue: dict[str, Any]) -> ContextItem:
        fields = issue.get("fields") or {}
        key = str(issue.get("key", ""))
        lines = []
        for name in self.fields:
            if name in ("summary", "description"):
                continue
            value = fields.get(name)
            if isinstance(value, dict):
                value = value.get("displayName") or value.get("name") or value.get("value")
            if value:
                lines.append(f"{name.capitalize()}: {value}")
        description = fields.get("description")
        if description:
            lines += ["", adf_text(description).strip()]
        return ContextItem(
            title=f"{key}: {fields.get('summary', '')}",
            text="\n".join(lines),
            url=f"{self.base_url}/browse/{key}",
            metadata={"key": key},
        )


class ConfluenceContext(_AtlassianSource):
    """Pages matching a CQL query, with their text.

    Args:
        cql: e.g. `space = ENG AND type = page AND label = runbook`.
        base_url: Cloud: `https://acme.atlassian.net/wiki`; self-hosted: the server's address.
        email: Cloud: the account's email (with an API token); omit for a self-hosted PAT.
        max_pages: At most this many pages.
        include_body: Read each page's text (storage format, as plain text).
        token / token_env: `CONFLUENCE_API_TOKEN` by default.
    """

    kind = "confluence"
    default_env = "CONFLUENCE_API_TOKEN"

    def __init__(self, cql: str, *, max_pages: int = 25, include_body: bool = True, **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(cql, str) or not cql.strip():
            raise ValueError("cql must be a CQL query")
        self.cql = cql
        self.max_pages = max_pages
        self.include_body = include_body

    async def fetch(self) -> list[ContextItem]:
        expand = "body.storage,version" if self.include_body else "version"
        results: list[dict[str, Any]] = []
        url = "/rest/api/content/search"
        params: dict[str, Any] | None = {"cql": self.cql, "limit": min(PAGE_SIZE, self.max_pages), "expand": expand}
        async with self.client() as client:
            while len(results) < self.max_pages:
                data = await client.json("GET", url, params=params)
                results += data.get("results", [])
                following = (data.get("_links") or {}).get("next")
                if not following:
                    break
                if not self.same_origin(following):
                    raise ContextError("confluence: a next link points at another server; not followed")
                url, params = following, None  # the link carries the query and the cursor
        return [self._item(page) for page in results[: self.max_pages]]

    def _item(self, page: dict[str, Any]) -> ContextItem:
        links = page.get("_links") or {}
        body = ((page.get("body") or {}).get("storage") or {}).get("value", "")
        version = (page.get("version") or {}).get("when", "")
        return ContextItem(
            title=str(page.get("title", "")),
            text=html_text(body) if body else "",
            url=f"{self.base_url}{links['webui']}" if links.get("webui") else "",
            metadata={"id": page.get("id", ""), "updated": version},
        )
