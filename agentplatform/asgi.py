"""The ASGI application served by Daphne: Django for HTTP (but `/mcp`, the MCP server's own
ASGI app), Channels consumers for WebSocket.

Django's ASGI app is built first, so that the app registry is ready before any consumer
module is imported.
"""

import os
from typing import Any

from agentplatform.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # after the app registry is ready
from django.urls import path  # noqa: E402

from agents.consumers import SessionConsumer  # noqa: E402
from agents.mcp_server.app import McpApp  # noqa: E402

websocket_urls = [path("ws/sessions/<str:session_id>/", SessionConsumer.as_asgi())]

MCP_PATHS = ("/mcp", "/mcp/")


def http_app(django_app: Any, mcp_app: Any) -> Any:
    """`/mcp` to the MCP server, everything else to Django."""

    async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
        app = mcp_app if scope["path"] in MCP_PATHS else django_app
        await app(scope, receive, send)

    return route


application = ProtocolTypeRouter(
    {"http": http_app(django_asgi_app, McpApp(django_asgi_app)), "websocket": URLRouter(websocket_urls)}
)
