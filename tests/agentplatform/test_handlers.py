"""The ASGI app serves Django requests with the middleware chain in sync mode."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIRequest
from django.middleware.security import SecurityMiddleware
from rest_framework.request import Request
from rest_framework.views import APIView

from agentplatform import handlers, notify
from agentplatform.asgi import django_asgi_app
from agentplatform.handlers import PlatformASGIHandler
from agents.models import Agent, ApiKey, Message, Run, Session
from agents.services import runs
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


Meanwhile = Callable[[asyncio.Task], Awaitable[None]]  # given the task serving the request


def _exchange(
    method: str,
    path: str,
    key: str,
    body: bytes = b"",
    *,
    meanwhile: Meanwhile | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> list[dict]:
    """A request served by the ASGI app to its end, as a server runs it (the client then
    leaves), with `meanwhile(serving)` awaited while it is served; the messages sent."""
    headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {key}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": client, "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict] = []

    async def serve() -> None:
        answered, requests = asyncio.Event(), [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            if requests:
                return requests.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.set()

        serving = asyncio.create_task(django_asgi_app(scope, receive, send))
        if meanwhile is not None:
            await meanwhile(serving)
        await serving

    asyncio.run(serve())
    return sent


def _serve(path: str, key: str) -> int:
    """A GET served to its end; its status."""
    return int(_exchange("GET", path, key)[0]["status"])


@pytest.mark.django_db(transaction=True)
def test_what_a_history_read_made_is_freed_when_it_is_answered_not_left_to_the_cycle_collector():
    # Given a session with a page of history, read once (what is loaded on first use stays)
    api_key, key = create_api_key()
    session = Session.objects.create(owner=api_key.user, agent=Agent.objects.get(name="oai"))
    Message.objects.bulk_create(Message(session=session, position=i, role="user", content="hi") for i in range(20))
    path = f"/api/v1/sessions/{session.pk}/messages/"
    assert _serve(path, key) == 200

    # When it is read again through the ASGI app, with the cycle collector's finds kept
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = [_serve(path, key) for _ in range(5)]
        gc.collect()
        left = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()

    # Then every read was answered, and nothing the reads made (the request, the view, the
    # page's rows) was left in reference cycles: it went as soon as its response was sent
    assert statuses == [200] * 5
    ours = ("django", "rest_framework", "agents", "agentplatform")
    assert [type(o).__name__ for o in left if type(o).__module__.startswith(ours)] == []


def test_the_wait_asked_of_the_refused_grows_with_the_refusals_and_comes_back_down(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(handlers.time, "monotonic", lambda: now[0])
    pacing = handlers.Pacing()

    def second(refusals: int) -> int:
        """`refusals` in one second; the Retry-After the first of the next second gets."""
        for _ in range(refusals):
            pacing.refuse()
        now[0] += 1.0
        return pacing.refuse()

    # A short burst under the rate: try again after 1 s
    assert second(50) == 1
    # Thousands of refused clients coming back every second: the wait grows until their
    # retries settle near the rate the process can afford to refuse
    waits = [second(pacing.REFUSALS_PER_SECOND * 20 // pacing.retry_after) for _ in range(4)]
    assert waits[0] > 1
    assert waits == sorted(waits)
    assert waits[-1] <= pacing.MAX_RETRY_AFTER
    # When the crowd is gone, the wait comes back to 1 s
    for _ in range(3):
        second(1)
    assert pacing.retry_after == 1


@pytest.mark.django_db(transaction=True)
def test_while_it_refuses_a_client_just_answered_waits_its_turn_behind_those_refused(monkeypatch):
    # Given a process with 10 places, of which a client answered within the last
    # Retry-After may take 6 while it refuses, and a clock
    now = [1000.0]
    monkeypatch.setattr(handlers.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(handlers, "_pacing", handlers.Pacing())
    monkeypatch.setattr(handlers, "_turns", handlers.Turns())
    monkeypatch.setattr(django_asgi_app, "admit_limit", 10)
    monkeypatch.setattr(django_asgi_app, "turn_limit", 6)
    key = create_api_key()[1]
    a, b, c, d = (("10.0.0.1", port) for port in (1001, 1002, 1003, 1004))

    def status(client: tuple[str, int], taken: int) -> int:
        """A request from `client` while `taken` places are taken; its status."""
        monkeypatch.setattr(django_asgi_app, "admitted", taken)
        return int(_exchange("GET", "/api/v1/agents/", key, client=client)[0]["status"])

    # While nothing is refused, a client served asks again and is served, up to the last place
    assert [status(b, 9), status(b, 9)] == [200, 200]
    # When every place is taken, a client is refused; then a client is served
    assert status(a, 10) == 503
    assert status(b, 5) == 200
    # Then, with places free but over 6 taken, the client just served waits its turn, while
    # the one refused before and a new one are served
    assert [status(b, 7), status(a, 7), status(c, 7)] == [503, 200, 200]
    # And once its Retry-After has passed, it is served like the others, though the process
    # still refuses
    now[0] += handlers._pacing.retry_after + 0.1
    assert status(d, 10) == 503
    assert status(b, 7) == 200


def _live(kinds: tuple[type, ...]) -> list[object]:
    """Objects of `kinds` with state (an emptied request has none), found by their own type
    (a dead weak proxy in the heap raises when asked for its class)."""
    return [o for o in gc.get_objects() if issubclass(type(o), kinds) and vars(o)]


WAITS = {
    # protocol: (path, body, the answer when the wait runs out: status, what the body tells)
    "native": ("/api/v1/agents/oai/runs/", {"input": "hi"}, 202, lambda body: body["status"] == "queued"),
    "openai": (
        "/openai/v1/chat/completions",
        {"model": "oai", "messages": [{"role": "user", "content": "hi"}]},
        504,
        lambda body: body["error"]["code"] == "run_in_progress",
    ),
    "langgraph": (
        "/langgraph/runs/wait",
        {"assistant_id": "oai", "input": {"messages": [{"role": "user", "content": "hi"}]}},
        200,
        lambda body: body == {"messages": []},  # the thread as it is: no worker took the run
    ),
}


@pytest.mark.parametrize("protocol", WAITS)
@pytest.mark.django_db(transaction=True)
def test_a_request_waiting_for_its_run_keeps_only_its_response_not_its_request_view_or_run(
    protocol, settings, monkeypatch
):
    # Given a key, runs that no worker is given (they stay queued), and a wait of a second at most
    monkeypatch.setattr(runs, "dispatch_on_commit", lambda run_id: None)
    settings.AGENTPLATFORM = {**getattr(settings, "AGENTPLATFORM", {}), "RUN_WAIT_SECONDS": 1.0}
    key = create_api_key()[1]
    path, body, status, told = WAITS[protocol]
    held: list[str] = []
    kinds = (ASGIRequest, Request, APIView, Run, ApiKey, Session)
    gc.collect()
    before = _live(kinds)  # what other tests left (kept alive here, so that no id is reused)

    async def look(serving: asyncio.Task) -> None:
        waiters = notify.completions()
        while not waiters.waiting and not serving.done():
            await asyncio.sleep(0.01)
        held.append(f"waiting: {waiters.waiting}")
        gc.collect()
        known = {id(o) for o in before}
        held.extend(type(o).__name__ for o in _live(kinds) if id(o) not in known)

    # When it starts a run (natively, as a chat completion, as a LangGraph wait), and the
    # request waits for it on the event loop
    sent = _exchange("POST", path, key, json.dumps(body).encode(), meanwhile=look)

    # Then it waited holding no request (Django's or DRF's), no view and no model instance
    # (the run, its session, the caller's key), and was answered when the wait ran out
    assert held == ["waiting: 1"]
    assert sent[0]["status"] == status, sent[1]["body"]
    assert told(json.loads(sent[1]["body"]))
