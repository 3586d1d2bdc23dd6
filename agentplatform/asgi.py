"""The ASGI application served by Daphne: Django for HTTP, but for the MCP server (`/mcp`)
and the A2A endpoints (under `/a2a/`), each its SDK's own ASGI app; Channels consumers for
WebSocket.

Django's ASGI app is built first, so that the app registry is ready before any consumer
module is imported.
"""

import os
from typing import Any

from agentplatform import heap
from agentplatform.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # after the app registry is ready
from django.urls import path  # noqa: E402

from agents.a2a_server.app import PREFIX, build  # noqa: E402
from agents.consumers import SessionConsumer  # noqa: E402
from agents.mcp_server.app import McpApp  # noqa: E402
from tracing.setup import traced_asgi  # noqa: E402

websocket_urls = [path("ws/sessions/<str:session_id>/", SessionConsumer.as_asgi())]

MCP_PATHS = ("/mcp", "/mcp/")
mcp_app = McpApp(django_asgi_app)
# The A2A app's requests count among the web process's, and each has a request span (tracing on).
a2a_app = traced_asgi(build(django_asgi_app.admit))


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    app: Any
    if path in MCP_PATHS:
        app = mcp_app
    elif path.startswith(f"{PREFIX}/"):
        app = a2a_app
    else:
        app = django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": URLRouter(websocket_urls)})
heap.settle()  # everything loaded so far lives as long as the process
