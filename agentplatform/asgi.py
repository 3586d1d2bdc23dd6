"""The ASGI application served by Daphne.

Django's ASGI app is built first, so that the app registry is ready before any consumer
module (added with live streaming) is imported.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentplatform.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402  # after the app registry is ready

application = ProtocolTypeRouter({"http": django_asgi_app})
