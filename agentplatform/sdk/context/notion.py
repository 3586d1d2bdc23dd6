"""Notion: the pages of a database matching a filter (`POST /v1/databases/{id}/query`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agentplatform.sdk.context.base import ContextError, ContextItem
from agentplatform.sdk.context.http import RestClient, RestSource

NOTION_VERSION = "2022-06-28"
PAGE_SIZE = 100
_FILTER_KEYS = frozenset({"property", "timestamp", "and", "or"})
# For a simple {"Property": value} filter: the condition each property type takes.
_CONDITIONS = {
    "status": "equals",
    "select": "equals",
    "multi_select": "contains",
    "title": "equals",
    "rich_text": "equals",
    "number": "equals",
    "checkbox": "equals",
    "date": "equals",
    "url": "equals",
    "email": "equals",
    "phone_number": "equals",
}


def _plain(rich: Any) -> str:
    return "".join(part.get("plain_text", "") for part in rich or [] if isinstance(part, dict))


def property_text(value: Mapping[str, Any]) -> str:  # noqa: PLR0911  # one case per property type
    """A page property's value as text."""
    kind = value.get("type", "")
    data = value.get(kind)
    if kind in ("title", "rich_text"):
        return _plain(data)
    if kind in ("select", "status"):
        return str(data.get("name", "")) if isinstance(data, dict) else ""
    if kind == "multi_select":
        return ", ".join(option.get("name", "") for option in data or [])
    if kind == "date":
        return "" if not data else str(data.get("start", "")) + (f" → {data['end']}" if data.get("end") else "")
    if kind == "people":
        return ", ".join(person.get("name") or person.get("id", "") for person in data or [])
    if kind == "formula" and isinstance(data, dict):
        return str(data.get(data.get("type", ""), ""))
    if kind == "relation":
        return f"{len(data or [])} related"
    if kind == "unique_id" and isinstance(data, dict):
        return f"{data.get('prefix') or ''}-{data.get('number')}".lstrip("-")
    return "" if data is None else str(data)


class NotionContext(RestSource):
    """Pages of a Notion database, with their properties.

    Args:
        database_id: The database's id.
        filter: Either Notion's own filter object ({"property": ..., "status": {...}},
            "and"/"or"), or a simple {"Property": value, ...} that is turned into one
            (equals, or contains for multi-select) using the database's property types.
        sorts: Notion sort objects.
        max_pages: At most this many pages.
        token / token_env: An integration token; `NOTION_TOKEN` by default.
        base_url: `https://api.notion.com/v1` unless overridden.
    """

    kind = "notion"
    default_base_url = "https://api.notion.com/v1"
    default_env = "NOTION_TOKEN"

    def __init__(
        self,
        database_id: str,
        *,
        filter: Mapping[str, Any] | None = None,  # noqa: A002  # Notion's own word
        sorts: Sequence[Mapping[str, Any]] | None = None,
        max_pages: int = 100,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if not isinstance(database_id, str) or not database_id:
            raise ValueError("database_id must be the database's id")
        if filter is not None and not isinstance(filter, Mapping):
            raise ValueError("filter must be an object")
        self.database_id = database_id
        self.filter = dict(filter) if filter else None
        self.sorts = [dict(s) for s in sorts] if sorts else None
        self.max_pages = max_pages

    def default_name(self) -> str:
        return f"notion:{self.database_id}"

    async def fetch(self) -> list[ContextItem]:
        async with self.client({"Notion-Version": NOTION_VERSION}) as client:
            body: dict[str, Any] = {}
            if self.filter:
                body["filter"] = self.filter if _FILTER_KEYS & self.filter.keys() else await self._simple(client)
            if self.sorts:
                body["sorts"] = self.sorts
            pages: list[dict[str, Any]] = []
            while len(pages) < self.max_pages:
                body["page_size"] = min(PAGE_SIZE, self.max_pages - len(pages))
                data = await client.json("POST", f"/databases/{self.database_id}/query", json=body)
                pages += data.get("results", [])
                if not data.get("has_more") or not data.get("next_cursor"):
                    break
                body["start_cursor"] = data["next_cursor"]
        return [self._item(page) for page in pages[: self.max_pages]]

    async def _simple(self, client: RestClient) -> dict[str, Any]:
        schema = await client.json("GET", f"/databases/{self.database_id}")
        properties = {name.lower(): (name, p.get("type")) for name, p in schema.get("properties", {}).items()}
        conditions = []
        for key, value in (self.filter or {}).items():
            name, kind = properties.get(key.lower(), (key, None))
            if kind not in _CONDITIONS:
                raise ContextError(f"notion: cannot filter on {key!r} (type {kind or 'unknown'}) with a simple value")
            conditions.append({"property": name, kind: {_CONDITIONS[kind]: value}})
        return conditions[0] if len(conditions) == 1 else {"and": conditions}

    def _item(self, page: dict[str, Any]) -> ContextItem:
        title = ""
        lines = []
        for name, value in page.get("properties", {}).items():
            if value.get("type") == "title":
                title = property_text(value)
            elif text := property_text(value):
                lines.append(f"{name}: {text}")
        return ContextItem(
            title=title or page.get("id", ""),
            text="\n".join(lines),
            url=page.get("url", ""),
            metadata={"last_edited": page.get("last_edited_time", "")},
        )
