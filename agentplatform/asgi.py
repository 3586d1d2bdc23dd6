"""The ASGI application served by Daphne: Django for HTTP, Channels consumers for WebSocket.

Django's ASGI app is built first, so that the app registry is ready before any consumer
module is imported.
"""

import os

from agentplatform.handlers import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # after the app registry is ready
from django.urls import path  # noqa: E402

from agents.consumers import SessionConsumer  # noqa: E402

websocket_urls = [path("ws/sessions/<str:session_id>/", SessionConsumer.as_asgi())]

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urls)})
