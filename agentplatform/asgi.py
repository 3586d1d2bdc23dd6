"""The ASGI application served by Daphne: Django for HTTP, Channels consumers for WebSocket,
and the A2A endpoints (under /a2a/) as the `a2a-sdk`'s own ASGI app.

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

from agents.a2a_server.app import PREFIX, build  # noqa: E402
from agents.consumers import SessionConsumer  # noqa: E402

websocket_urls = [path("ws/sessions/<str:session_id>/", SessionConsumer.as_asgi())]

a2a_app = build(django_asgi_app.admit)  # the A2A app's requests count among the web process's


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    app = a2a_app if scope["path"].startswith(f"{PREFIX}/") else django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter({"http": http, "websocket": URLRouter(websocket_urls)})
