"""A local fake of six SaaS APIs, serving their real paths, response shapes and pagination.

One threaded HTTP server; each service lives under its own prefix, so that a connector's
`base_url` points at `{server.url}/{prefix}` and the rest of the path is the real one:

- Slack (`/slack/api`): conversations.list, conversations.history; `response_metadata.next_cursor`.
- Notion (`/notion/v1`): GET databases/{id}, POST databases/{id}/query; `has_more`/`next_cursor`.
- Jira (`/jira`): rest/api/3/search/jql (`nextPageToken`), rest/api/2/search (`startAt`/`total`).
- Confluence (`/confluence/wiki`): rest/api/content/search; `_links.next`.
- GitHub (`/github`): repos/{owner}/{repo}/issues; the `Link: <...>; rel="next"` header.
- Google Drive (`/drive/drive/v3`): files (`nextPageToken`), files/{id}/export, files/{id}?alt=media.

Every request must carry the service's credential (a wrong one gets that service's own
401 or error shape). `rate_limit_once(service)` makes the service's next request a 429
with `Retry-After: 1` (`rate_limit(service, times=n)` the next n). Requests are recorded. Standard library only.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast
from urllib.parse import parse_qs, urlencode, urlsplit

SLACK_TOKEN = "xoxb-fake-slack-token-1234"
NOTION_TOKEN = "secret_fakeNotionToken5678"
JIRA_EMAIL = "bot@example.com"
JIRA_TOKEN = "fake-jira-api-token-9012"
CONFLUENCE_PAT = "fake-confluence-pat-3456"
GITHUB_TOKEN = "ghp_fakeGitHubToken7890"
DRIVE_TOKEN = "ya29.fake-drive-access-token"


@dataclass
class Seen:
    service: str
    method: str
    path: str  # without the service prefix
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any


def _slack_messages() -> list[dict[str, Any]]:
    # newest first, as Slack returns them
    return [
        {"type": "message", "user": f"U0{i}", "text": f"support message {i}", "ts": f"17000000{i:02d}.000100"}
        for i in range(5, 0, -1)
    ]


NOTION_PAGES = [
    {
        "object": "page",
        "id": f"page-{i}",
        "created_time": "2025-01-01T00:00:00.000Z",
        "last_edited_time": f"2025-01-0{i}T10:00:00.000Z",
        "url": f"https://www.notion.so/page-{i}",
        "properties": {
            "Name": {"id": "title", "type": "title", "title": [{"type": "text", "plain_text": f"Ticket {i}"}]},
            "Status": {"id": "st", "type": "status", "status": {"id": "s1", "name": "open", "color": "green"}},
            "Tags": {"id": "tg", "type": "multi_select", "multi_select": [{"name": "billing"}, {"name": "vip"}]},
        },
    }
    for i in range(1, 4)
]
JIRA_ISSUES = [
    {
        "id": str(10000 + i),
        "key": f"SUP-{i}",
        "fields": {
            "summary": f"Login fails {i}",
            "status": {"name": "In Progress"},
            "assignee": {"displayName": "Ada"},
            "description": {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": f"Steps for {i}"}]}],
            },
        },
    }
    for i in range(1, 4)
]
CONFLUENCE_PAGES = [
    {
        "id": str(100 + i),
        "type": "page",
        "status": "current",
        "title": f"Runbook {i}",
        "body": {"storage": {"value": f"<p>Restart the <b>service</b> {i}.</p>", "representation": "storage"}},
        "version": {"number": 3, "when": "2025-02-01T00:00:00.000Z"},
        "_links": {"webui": f"/spaces/OPS/pages/{100 + i}/Runbook+{i}", "self": f"/rest/api/content/{100 + i}"},
    }
    for i in range(1, 4)
]
GITHUB_ITEMS = [
    {
        "number": i,
        "title": f"{'Fix' if i % 2 else 'Bug'} {i}",
        "state": "open",
        "user": {"login": "octocat"},
        "labels": [{"name": "bug"}],
        "body": f"Body {i}",
        "html_url": f"https://github.com/acme/app/{'pull' if i % 2 else 'issues'}/{i}",
        "updated_at": "2025-03-01T00:00:00Z",
        **({"pull_request": {"url": f"https://api.github.com/repos/acme/app/pulls/{i}"}} if i % 2 else {}),
    }
    for i in range(1, 6)
]
DRIVE_FILES = [
    {
        "id": "doc1",
        "name": "Onboarding",
        "mimeType": "application/vnd.google-apps.document",
        "modifiedTime": "2025-04-01T00:00:00.000Z",
        "webViewLink": "https://docs.google.com/document/d/doc1/edit",
    },
    {
        "id": "txt1",
        "name": "notes.txt",
        "mimeType": "text/plain",
        "modifiedTime": "2025-04-02T00:00:00.000Z",
        "webViewLink": "https://drive.google.com/file/d/txt1/view",
    },
    {
        "id": "img1",
        "name": "logo.png",
        "mimeType": "image/png",
        "modifiedTime": "2025-04-03T00:00:00.000Z",
        "webViewLink": "https://drive.google.com/file/d/img1/view",
    },
]


class Reply:
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


def _page(items: list[Any], offset: int, size: int) -> tuple[list[Any], int | None]:
    chunk = items[offset : offset + size]
    following = offset + size if offset + size < len(items) else None
    return chunk, following


class _Services:
    """The handlers, by service; each takes the request and returns a Reply."""

    def __init__(self, server: FakeSaaS) -> None:
        self.server = server

    # --- Slack ---------------------------------------------------------------------------
    def slack(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {SLACK_TOKEN}":
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        if seen.path == "/api/conversations.list":
            channels = [{"id": "C0RANDOM", "name": "random"}, {"id": "C0SUPPORT", "name": "support"}]
            cursor = seen.query.get("cursor", "")
            chunk = channels[1:] if cursor == "dGVhbTpDMDE=" else channels[:1]
            next_cursor = "" if cursor else "dGVhbTpDMDE="
            return Reply(200, {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": next_cursor}})
        if seen.path == "/api/conversations.history":
            if seen.query.get("channel") != "C0SUPPORT":
                return Reply(200, {"ok": False, "error": "channel_not_found"})
            offset = int(base64.b64decode(seen.query["cursor"]).decode().split(":")[1]) if "cursor" in seen.query else 0
            chunk, following = _page(_slack_messages(), offset, 2)
            cursor = base64.b64encode(f"next_ts:{following}".encode()).decode() if following else ""
            body = {"ok": True, "messages": chunk, "has_more": bool(following), "pin_count": 0}
            return Reply(200, {**body, "response_metadata": {"next_cursor": cursor}})
        return Reply(200, {"ok": False, "error": "unknown_method"})

    # --- Notion --------------------------------------------------------------------------
    def notion(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {NOTION_TOKEN}":
            return Reply(
                401, {"object": "error", "status": 401, "code": "unauthorized", "message": "API token is invalid."}
            )
        if seen.headers.get("notion-version") != "2022-06-28":
            return Reply(
                400,
                {
                    "object": "error",
                    "status": 400,
                    "code": "missing_version",
                    "message": "Notion-Version header failed validation.",
                },
            )
        if seen.method == "GET" and seen.path == "/databases/db123":
            properties = {
                "Name": {"id": "title", "name": "Name", "type": "title", "title": {}},
                "Status": {"id": "st", "name": "Status", "type": "status", "status": {}},
                "Tags": {"id": "tg", "name": "Tags", "type": "multi_select", "multi_select": {}},
            }
            return Reply(200, {"object": "database", "id": "db123", "properties": properties})
        if seen.method == "POST" and seen.path == "/databases/db123/query":
            start = int(seen.body.get("start_cursor") or 0)
            chunk, following = _page(NOTION_PAGES, start, 2)
            return Reply(
                200,
                {
                    "object": "list",
                    "results": chunk,
                    "next_cursor": str(following) if following else None,
                    "has_more": following is not None,
                    "type": "page_or_database",
                    "page_or_database": {},
                },
            )
        return Reply(404, {"object": "error", "status": 404, "code": "object_not_found", "message": "Not found."})

    # --- Jira ----------------------------------------------------------------------------
    def jira(self, seen: Seen) -> Reply:
        basic = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
        if seen.headers.get("authorization") != f"Basic {basic}":
            return Reply(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
        if seen.path == "/rest/api/3/search/jql":
            start = int(seen.query.get("nextPageToken", "0").removeprefix("tok-"))
            chunk, following = _page(JIRA_ISSUES, start, 2)
            body: dict[str, Any] = {"issues": chunk, "isLast": following is None}
            if following is not None:
                body["nextPageToken"] = f"tok-{following}"
            return Reply(200, body)
        if seen.path == "/rest/api/2/search":
            start = int(seen.query.get("startAt", "0"))
            chunk, _ = _page(JIRA_ISSUES, start, 2)
            return Reply(200, {"startAt": start, "maxResults": 2, "total": len(JIRA_ISSUES), "issues": chunk})
        return Reply(404, {"errorMessages": ["Not found"], "errors": {}})

    # --- Confluence ----------------------------------------------------------------------
    def confluence(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {CONFLUENCE_PAT}":
            return Reply(401, {"statusCode": 401, "message": "Unauthorized"})
        if seen.path == "/wiki/rest/api/content/search":
            start = int(seen.query.get("cursor", "0"))
            chunk, following = _page(CONFLUENCE_PAGES, start, 2)
            links: dict[str, str] = {"base": f"{self.server.url}/confluence/wiki", "context": "/wiki"}
            if following is not None:
                links["next"] = "/rest/api/content/search?" + urlencode(
                    {"cql": seen.query["cql"], "expand": seen.query.get("expand", ""), "limit": 2, "cursor": following}
                )
            return Reply(200, {"results": chunk, "start": start, "limit": 2, "size": len(chunk), "_links": links})
        return Reply(404, {"statusCode": 404, "message": "Not found"})

    # --- GitHub --------------------------------------------------------------------------
    def github(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {GITHUB_TOKEN}":
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if seen.path == "/repos/acme/app/issues":
            page = int(seen.query.get("page", "1"))
            chunk, following = _page(GITHUB_ITEMS, (page - 1) * 2, 2)
            headers = {}
            if following is not None:
                query = urlencode({**seen.query, "page": page + 1})
                headers["Link"] = (
                    f'<{self.server.url}/github/repositories/42/issues?{query}>; rel="next", '
                    f'<{self.server.url}/github/repositories/42/issues?page=3>; rel="last"'
                )
            return Reply(200, chunk, headers)
        if seen.path == "/repositories/42/issues":
            return self.github(
                Seen(seen.service, seen.method, "/repos/acme/app/issues", seen.query, seen.headers, None)
            )
        return Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

    # --- Google Drive --------------------------------------------------------------------
    def drive(self, seen: Seen) -> Reply:
        if seen.headers.get("authorization") != f"Bearer {DRIVE_TOKEN}":
            error = {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
            return Reply(401, {"error": error})
        if seen.path == "/drive/v3/files":
            start = int(seen.query.get("pageToken", "0"))
            chunk, following = _page(DRIVE_FILES, start, 2)
            body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, "files": chunk}
            if following is not None:
                body["nextPageToken"] = str(following)
            return Reply(200, body)
        if seen.path == "/drive/v3/files/doc1/export" and seen.query.get("mimeType") == "text/plain":
            return Reply(200, "Welcome aboard. Read the handbook.", {"Content-Type": "text/plain; charset=utf-8"})
        if seen.path == "/drive/v3/files/txt1" and seen.query.get("alt") == "media":
            return Reply(200, "plain notes", {"Content-Type": "text/plain"})
        error = {"code": 404, "message": "File not found.", "status": "NOT_FOUND"}
        return Reply(404, {"error": error})


PREFIXES = {
    "/slack": "slack",
    "/notion/v1": "notion",
    "/jira": "jira",
    "/confluence": "confluence",
    "/github": "github",
    "/drive": "drive",
}
RATE_LIMITED = {
    "slack": {"ok": False, "error": "ratelimited"},
    "notion": {"object": "error", "status": 429, "code": "rate_limited", "message": "You have been rate limited."},
    "jira": {"errorMessages": ["Rate limit exceeded."], "errors": {}},
    "confluence": {"statusCode": 429, "message": "Rate limit exceeded"},
    "github": {"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest"},
    "drive": {"error": {"code": 429, "message": "Rate Limit Exceeded", "status": "RESOURCE_EXHAUSTED"}},
}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeSaaS


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = cast(_HTTPServer, self.server).fake
        parts = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        prefix = next((p for p in PREFIXES if parts.path.startswith(p + "/")), None)
        if prefix is None:
            self._send(Reply(404, {"error": "no such service"}))
            return
        service = PREFIXES[prefix]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(
            service, self.command, parts.path.removeprefix(prefix), query, headers, json.loads(raw) if raw else None
        )
        fake.record(seen)
        if fake.take_rate_limit(service):
            self._send(Reply(429, RATE_LIMITED[service], {"Retry-After": "1"}))
            return
        self._send(getattr(fake.services, service)(seen))

    def _send(self, reply: Reply) -> None:
        is_text = isinstance(reply.body, str)
        data = reply.body.encode() if is_text else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "text/plain" if is_text else "application/json; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeSaaS:
    """Serves every fake service on one port from a background thread."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.services = _Services(self)
        self._rate_limits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def base_url(self, service: str) -> str:
        return {
            "slack": f"{self.url}/slack/api",
            "notion": f"{self.url}/notion/v1",
            "jira": f"{self.url}/jira",
            "confluence": f"{self.url}/confluence/wiki",
            "github": f"{self.url}/github",
            "drive": f"{self.url}/drive/drive/v3",
        }[service]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self, service: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.service == service]

    def rate_limit_once(self, service: str) -> None:
        self.rate_limit(service, times=1)

    def rate_limit(self, service: str, *, times: int) -> None:
        """Answer the service's next `times` requests with a 429 and `Retry-After: 1`."""
        with self._lock:
            self._rate_limits[service] = times

    def take_rate_limit(self, service: str) -> bool:
        with self._lock:
            left = self._rate_limits.get(service, 0)
            self._rate_limits[service] = max(0, left - 1)
            return left > 0

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._rate_limits.clear()

    def start(self) -> Self:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
