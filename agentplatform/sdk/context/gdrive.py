"""Google Drive: files of a folder or a search (`files.list`), with Google Docs, Sheets and
Slides exported as text (`files.export`) and plain-text files downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentplatform.sdk.context.base import ContextItem
from agentplatform.sdk.context.http import RestClient, RestSource

PAGE_SIZE = 100
FILE_FIELDS = "id,name,mimeType,modifiedTime,webViewLink"
EXPORTS = {
    "application/vnd.google-apps.document": "text/plain",
    "application/vnd.google-apps.spreadsheet": "text/csv",
    "application/vnd.google-apps.presentation": "text/plain",
}


class GoogleDriveContext(RestSource):
    """Files from Google Drive with their text.

    Args:
        folder_id: The files of this folder (not trashed), or
        query: a Drive search (`name contains 'runbook' and trashed = false`), or
        file_ids: these files.
        export: Export Google Docs/Sheets/Slides as text and download text files; without
            it, items are the files' names and links.
        max_files: At most this many files.
        max_file_chars: Each file's text is cut at this length.
        token / token_env: An OAuth 2.0 access token with a Drive read scope
            (`GOOGLE_DRIVE_TOKEN` by default).
        base_url: `https://www.googleapis.com/drive/v3` unless overridden.
    """

    kind = "google_drive"
    default_base_url = "https://www.googleapis.com/drive/v3"
    default_env = "GOOGLE_DRIVE_TOKEN"

    def __init__(
        self,
        *,
        folder_id: str | None = None,
        query: str | None = None,
        file_ids: Sequence[str] | None = None,
        export: bool = True,
        max_files: int = 20,
        max_file_chars: int = 50_000,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if sum(x is not None for x in (folder_id, query, file_ids)) != 1:
            raise ValueError("give one of folder_id, query or file_ids")
        if folder_id is not None and ("'" in folder_id or "\\" in folder_id):
            raise ValueError("folder_id is not a Drive id")
        self.folder_id = folder_id
        self.query = query
        self.file_ids = list(file_ids) if file_ids is not None else None
        self.export = export
        self.max_files = max_files
        self.max_file_chars = max_file_chars

    async def fetch(self) -> list[ContextItem]:
        async with self.client() as client:
            files = await self._files(client)
            return [await self._item(client, f) for f in files[: self.max_files]]

    async def _files(self, client: RestClient) -> list[dict[str, Any]]:
        if self.file_ids is not None:
            return [await client.json("GET", f"/files/{i}", params={"fields": FILE_FIELDS}) for i in self.file_ids]
        query = self.query or f"'{self.folder_id}' in parents and trashed = false"
        files: list[dict[str, Any]] = []
        page_token = ""
        while len(files) < self.max_files:
            params: dict[str, Any] = {
                "q": query,
                "pageSize": min(PAGE_SIZE, self.max_files),
                "fields": f"nextPageToken,files({FILE_FIELDS})",
                "orderBy": "modifiedTime desc",
            }
            if page_token:
                params["pageToken"] = page_token
            data = await client.json("GET", "/files", params=params)
            files += data.get("files", [])
            page_token = data.get("nextPageToken") or ""
            if not page_token:
                break
        return files

    async def _item(self, client: RestClient, file: dict[str, Any]) -> ContextItem:
        mime = str(file.get("mimeType", ""))
        text = f"({mime}, modified {file.get('modifiedTime', '')})"
        if self.export and mime in EXPORTS:
            response = await client.request("GET", f"/files/{file['id']}/export", params={"mimeType": EXPORTS[mime]})
            text = response.text
        elif self.export and (mime.startswith("text/") or mime == "application/json"):
            response = await client.request("GET", f"/files/{file['id']}", params={"alt": "media"})
            text = response.text
        return ContextItem(
            title=str(file.get("name", file.get("id", ""))),
            text=text[: self.max_file_chars],
            url=str(file.get("webViewLink", "")),
            metadata={"id": file.get("id", ""), "modified": file.get("modifiedTime", "")},
        )
