"""A real MCP server, written with the official SDK, that the tests start as a process.

    python -m tests.fakes.mcp_server stdio           # over stdin/stdout
    python -m tests.fakes.mcp_server http            # streamable HTTP on a free port; prints the port

Resources `notes://today` and `notes://policy`, the prompt `triage`, and the tools `add`,
`delete_record` and `fail`. Every tool call is appended to the file named by
`FAKE_MCP_CALLS` (if set), so a test can see what actually ran. Over HTTP, with
`FAKE_MCP_TOKEN` set, requests without `Authorization: Bearer <token>` get a 401.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("fake-mcp", instructions="A fake server for the agentplatform tests.")


def _record(name: str, arguments: dict[str, Any]) -> None:
    path = os.environ.get("FAKE_MCP_CALLS")
    if path:
        with open(path, "a") as log:
            log.write(json.dumps({"tool": name, "arguments": arguments}) + "\n")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _record("add", {"a": a, "b": b})
    return a + b


@server.tool()
def delete_record(record_id: str) -> str:
    """Delete a record (irreversible)."""
    _record("delete_record", {"record_id": record_id})
    return f"deleted {record_id}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails (an error result the model reads)."""
    _record("fail", {"reason": reason})
    raise ToolError(f"refused: {reason}")


@server.resource("notes://today", name="today", description="Today's notes", mime_type="text/plain")
def today() -> str:
    return "Standup at 10:00. The billing migration is frozen until Friday."


@server.resource("notes://policy", name="policy", description="Refund policy", mime_type="text/plain")
def policy() -> str:
    return "Refunds above 100 EUR need a manager."


@server.prompt()
def triage(area: str = "all") -> str:
    """How to triage incoming tickets."""
    return f"Triage {area} tickets by customer impact first."


class BearerCheck:
    """Refuses requests without the expected bearer token (ASGI middleware)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                response: Response = JSONResponse({"error": "unauthorized"}, status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve_http() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    print(sock.getsockname()[1], flush=True)
    app: ASGIApp = server.streamable_http_app()
    token = os.environ.get("FAKE_MCP_TOKEN")
    if token:
        app = BearerCheck(app, token)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    anyio.run(lambda: uvicorn_server.serve(sockets=[sock]))


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        server.run("stdio")
