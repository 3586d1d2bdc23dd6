"""The ASGI app serves Django requests with the middleware chain in sync mode."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.middleware.security import SecurityMiddleware

from agentplatform.asgi import django_asgi_app
from agentplatform.handlers import PlatformASGIHandler
from tests.factories import create_api_key


def _get(path: str, key: str) -> dict:
    headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {key}".encode())]
    return async_to_sync(HttpCommunicator(django_asgi_app, "GET", path, headers=headers).get_response)()


@pytest.mark.django_db(transaction=True)
def test_an_api_request_goes_through_the_whole_middleware_chain_off_the_event_loop(monkeypatch):
    # Given an API key, and a record of the thread a middleware hook runs on
    _, key = create_api_key()
    threads: list[threading.Thread] = []
    process_request = SecurityMiddleware.process_request

    def recording(self, request):
        threads.append(threading.current_thread())
        return process_request(self, request)

    monkeypatch.setattr(SecurityMiddleware, "process_request", recording)

    # When the client lists its agents through the ASGI app
    response = _get("/api/v1/agents/", key)

    # Then it is served, with the headers of the outermost and innermost middleware, and
    # the chain ran in sync mode, on a thread of the web pool
    assert isinstance(django_asgi_app, PlatformASGIHandler)
    assert response["status"] == 200, response["body"]
    headers = dict(response["headers"])
    assert headers[b"X-Content-Type-Options"] == b"nosniff"
    assert headers[b"X-Frame-Options"] == b"DENY"
    assert len(threads) == 1
    assert threads[0].name.startswith("web")
