"""The ASGI app served at `/mcp`: the host and the API key are checked first (a missing or bad
key is a 401 before any MCP message is read), then the SDK's streamable HTTP transport,
stateless (any web process answers any request). Answers go as Server-Sent Events, so that a
call waiting for its run sends a keep-alive ping every 15 seconds through proxies.

Requests are admitted like Django's (`agentplatform.handlers.Admission`): one counts from its
arrival until its sync work is done (the run started, or the tools listed), and past the web
tier's limit the next is refused 503 with `Retry-After` at once, before anything is read.
Each request counts against the key's requests per minute (429 past it), as an API request.

Daphne sends no lifespan events, so the SDK's session manager is started on the first
request in the process and runs for the process's life.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import INVALID_REQUEST

from agentplatform.errors import RateLimited
from agentplatform.handlers import ADMISSION, Admission, PlatformASGIHandler, overloaded
from agentplatform.pools import web_pool
from agents.auth import authenticate_key
from agents.errors import ApiKeyRejected
from agents.mcp_server import server
from agents.models import ApiKey
from agents.services import limits

Scope = dict[str, Any]
Receive = Any
Send = Any

LOCAL_HOSTS = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows with DEBUG and no ALLOWED_HOSTS


class McpApp:
    def __init__(self, web: PlatformASGIHandler) -> None:
        self._web = web  # whose admissions MCP requests share
        self._manager = StreamableHTTPSessionManager(app=server.build(), stateless=True)
        self._ready: asyncio.Event | None = None
        self._running: asyncio.Task[None] | None = None  # the manager's task, referenced so it is not collected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _allowed_host(scope):
            await _error(send, 400, "Invalid Host header.")
            return
        if self._web.admitted >= self._web.admit_limit:
            refused = overloaded()
            await _error(
                send, refused.status, refused.message, {"Retry-After": str(refused.retry_after)}, code=refused.code
            )
            return
        admission = Admission(self._web)
        try:
            await self._admitted(scope, receive, send, admission)
        finally:
            admission.release()  # if the request ended before its sync work did

    async def _admitted(self, scope: Scope, receive: Receive, send: Send, admission: Admission) -> None:
        try:
            api_key = await web_pool().run(_caller, _bearer(scope))
        except ApiKeyRejected as exc:
            await _error(send, 401, exc.message, {"WWW-Authenticate": 'Bearer realm="agentplatform"'}, code=exc.code)
            return
        except RateLimited as exc:
            await _error(send, exc.status, exc.message, exc.headers, code=exc.code)
            return
        await self._started()
        await self._manager.handle_request({**scope, server.API_KEY: api_key, ADMISSION: admission}, receive, send)

    async def _started(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
            self._running = asyncio.get_running_loop().create_task(self._run(self._ready))
        await self._ready.wait()

    async def _run(self, ready: asyncio.Event) -> None:
        async with self._manager.run():
            ready.set()
            await asyncio.Event().wait()  # until the process stops


def _bearer(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and key.strip():
                return key.strip()
    raise ApiKeyRejected("Send the API key as `Authorization: Bearer <key>`.")


def _caller(key: str) -> ApiKey:
    """The key's, counted against its requests per minute (as every API request is)."""
    api_key = authenticate_key(key)
    limits.check_request(api_key.user, api_key)
    return api_key


def _allowed_host(scope: Scope) -> bool:
    """The Host header checked against ALLOWED_HOSTS, as Django checks it for its own requests."""
    host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (LOCAL_HOSTS if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


async def _error(
    send: Send, status: int, message: str, headers: dict[str, str] | None = None, *, code: str | None = None
) -> None:
    """A JSON-RPC error (no request id) with an HTTP status, as the SDK answers transport errors."""
    error: dict[str, Any] = {"code": INVALID_REQUEST, "message": message}
    if code is not None:
        error["data"] = {"code": code}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    sent = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    sent += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": sent})
    await send({"type": "http.response.body", "body": body})
