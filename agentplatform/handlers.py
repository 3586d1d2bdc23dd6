"""Django's ASGI handler, with the middleware chain and the views run in one thread per request.

Django's own handler runs the middleware chain in async mode. Our middleware (Django's,
WhiteNoise, django-otp, OpenTelemetry's) and views are synchronous, so each of their hooks
then costs a hop between the event loop and a thread: about fifteen per API request. Here
the chain is loaded in sync mode, as under WSGI, and the whole request crosses to its
thread once (Django's per-request thread, the same one its `request_started` receivers use).
"""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        """Django calls this with is_async=True; the chain is loaded in sync mode regardless."""
        super().load_middleware(is_async=False)
        chain = self._middleware_chain  # type: ignore[has-type]  # django-stubs leave it untyped
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)


def get_asgi_application() -> SyncChainASGIHandler:
    """The handler, once Django is set up (as `django.core.asgi.get_asgi_application`)."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
