"""Django's ASGI handler, shaped for requests that wait.

The middleware chain and the views are synchronous (Django's middleware, WhiteNoise,
django-otp, OpenTelemetry's, DRF). Loaded in async mode, each of their hooks would cost a
hop between the event loop and a thread: about fifteen per API request. Here the chain is
loaded in sync mode, as under WSGI, and the whole request crosses to a thread once.

That thread comes from the process's bounded pool (`agentplatform.pools.web_pool`), not
from one thread per request as Django's handler gives: a request holds a thread only
while it does sync work. Requests wait for a thread in FIFO order; when WEB_QUEUE requests
already wait (every thread busy), the next is answered `503 overloaded` with `Retry-After`
at once, before Django handles it. While it refuses, clients take turns (`Turns`).
A view that must wait (for a run to finish) returns a `Deferred` response; the handler
awaits it on the event loop, where waiting holds no thread and no connection, and sends
the response it resolves to.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

import django
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix

from agentplatform.api.errors import WebOverloaded, unavailable_response
from agentplatform.conf import platform_settings
from agentplatform.pools import web_pool

DEFERRABLE = "agentplatform.deferrable"  # in request.META: the handler resolves `Deferred` responses
ADMISSION = "agentplatform.admission"  # in the ASGI scope: the request's place among those admitted


class Admission:
    """A request counted from its arrival until its sync work is done (or it ends before):
    past WEB_THREADS + WEB_QUEUE such requests, the next one is refused at once."""

    def __init__(self, handler: PlatformASGIHandler, client: Client | None = None) -> None:
        self._handler: PlatformASGIHandler | None = handler
        self._client = client
        handler.admitted += 1

    def release(self) -> None:
        if self._handler is not None:
            self._handler.admitted -= 1
            self._handler = None
            _turns.served(self._client, time.monotonic())


Client = tuple[Any, ...]  # a connection: the server's `client` address (host, port)


class Pacing:
    """How long the refused should wait before they try again (`Retry-After`).

    A refused client that tries again after 1 s comes back while the process is still full:
    with thousands of clients the refusals alone (about a millisecond each) would fill the
    process, and new clients would wait for any answer at all. Each second the wait is
    scaled by how many refusals that second saw against REFUSALS_PER_SECOND, so that the
    retries settle near that rate (from 1 s, up to MAX_RETRY_AFTER): under a short burst
    clients come back after 1 s; under thousands, later, and each gets its answer at once.
    """

    REFUSALS_PER_SECOND = 100
    MAX_RETRY_AFTER = 60

    def __init__(self) -> None:
        self.retry_after = 1
        self._since = time.monotonic()
        self._refused = 0
        self.last_refusal = -math.inf

    def refusing(self, now: float) -> bool:
        """Whether the process refused a request within the last Retry-After."""
        return now - self.last_refusal < self.retry_after

    def refuse(self) -> int:
        """Count a refusal; the `Retry-After` (seconds) it is answered with."""
        now = self.last_refusal = time.monotonic()
        elapsed = now - self._since
        if elapsed >= 1.0:
            rate = self._refused / elapsed
            scaled = math.ceil(self.retry_after * rate / self.REFUSALS_PER_SECOND)
            self.retry_after = min(self.MAX_RETRY_AFTER, max(1, scaled))
            self._since, self._refused = now, 0
        self._refused += 1
        return self.retry_after


_pacing = Pacing()


class Turns:
    """While the process refuses requests, its clients take turns.

    A client just answered asks again at once, while a refused one waits its `Retry-After`:
    left alone, the clients being served would find the places that free up and keep them,
    and the refused would get none (at 10,000 readers, 7 in 10 got only refusals). So while
    the process refuses, a request from a client served within the last `Retry-After` may
    take only the places below `turn_limit` (about half of them); the rest stay for the
    clients that were refused or are new. A client is its connection. The threads stay busy
    either way, so no fewer requests are served."""

    def __init__(self) -> None:
        self._served: dict[Client, float] = {}  # client: when its last request's sync work ended
        self._order: collections.deque[tuple[float, Client]] = collections.deque()

    def served(self, client: Client | None, now: float) -> None:
        if client is not None and _pacing.refusing(now):
            self._served[client] = now
            self._order.append((now, client))

    def had_one(self, client: Client | None, now: float, within: float) -> bool:
        """Whether `client` was served within the last `within` seconds (while refusing)."""
        order, served = self._order, self._served
        while order and order[0][0] < now - within:
            at, gone = order.popleft()
            if served.get(gone) == at:
                del served[gone]
        return client is not None and client in served


_turns = Turns()


def overloaded() -> WebOverloaded:
    """The refusal of a request this web process has no place for, its `Retry-After` paced."""
    return WebOverloaded(details={"scope": "web"}, retry_after=_pacing.refuse())


class Deferred(HttpResponse):
    """A response that is not known yet: `resolve` (a coroutine) fills in its status and body
    on the event loop. Headers the middleware set on it are kept."""

    def __init__(self, resolve: Callable[[], Awaitable[HttpResponse]]) -> None:
        super().__init__(status=202, content_type="application/json")
        self._resolve = resolve
        self._resolved: list[Callable[[HttpResponse], None]] = []

    def on_resolved(self, callback: Callable[[HttpResponse], None]) -> None:
        """`callback(self)` once resolved (or given up: the client left), e.g. to end a span."""
        self._resolved.append(callback)

    async def resolve(self) -> None:
        try:
            final = await self._resolve()
            self.status_code = final.status_code
            self.content = final.content
            for header, value in final.items():
                self[header] = value
            self["Content-Length"] = str(len(self.content))
        finally:
            for callback in self._resolved:
                callback(self)


class PlatformASGIHandler(ASGIHandler):
    admitted = 0  # requests not done with their sync work (see Admission)
    admit_limit: int
    turn_limit: int

    def load_middleware(self, is_async: bool = False) -> None:
        """Django calls this with is_async=True; the chain is loaded in sync mode regardless,
        and runs on the web pool."""
        super().load_middleware(is_async=False)
        inner = self._middleware_chain  # type: ignore[has-type]  # django-stubs leave it untyped

        def resolved_chain(request: HttpRequest) -> HttpResponseBase:
            # The URL is resolved once, before the middleware: OpenTelemetry's names the
            # request's span from the match, and `resolve_request` below reuses it.
            with contextlib.suppress(Resolver404):  # Django resolves again, and answers the 404
                request.resolver_match = get_resolver().resolve(request.path_info)
            response: HttpResponseBase = inner(request)
            return response

        chain = web_pool().bind(resolved_chain)
        settings = platform_settings()
        self.admit_limit = settings.WEB_THREADS + settings.WEB_QUEUE
        self.turn_limit = settings.WEB_THREADS + settings.WEB_QUEUE // 2  # for a client just served (Turns)

        async def run_chain(request: HttpRequest) -> HttpResponseBase:
            try:
                return await chain(request)
            finally:
                request.scope[ADMISSION].release()  # type: ignore[attr-defined]  # an ASGIRequest

        self._middleware_chain = run_chain

    def admit(self) -> Admission | None:
        """A place for a request served beside Django (an ASGI app mounted next to it, whose
        sync work runs on the same pool), or None past the limit: it is then refused at once."""
        return Admission(self) if self.admitted < self.admit_limit else None

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        if request.resolver_match is not None and not hasattr(request, "urlconf"):
            return request.resolver_match
        return super().resolve_request(request)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Django's handler opens a ThreadSensitiveContext here, which gives each request a
        # thread of its own for its whole life; the chain runs on the bounded pool instead.
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        client = tuple(scope["client"]) if scope.get("client") else None
        if not self._takes(client):  # before Django sees it: a refusal costs no thread and no wait
            await self.send_response(unavailable_response(overloaded()), send)
            return
        scope[ADMISSION] = admission = Admission(self, client)
        try:
            await self.handle(scope, receive, send)
        finally:
            admission.release()  # if the request never reached the chain (aborted, refused by Django)

    def _takes(self, client: Client | None) -> bool:
        """Whether there is a place for a request from `client` (see Admission and Turns)."""
        now = time.monotonic()
        if _pacing.refusing(now) and _turns.had_one(client, now, _pacing.retry_after):
            return self.admitted < self.turn_limit
        return self.admitted < self.admit_limit

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's `ASGIHandler.handle` (5.2), but the request's start and end are signalled
        on the event loop, not through a hop each to asgiref's one shared thread (two per
        request, all requests queued on one thread). Django's receivers (`reset_queries`,
        `close_old_connections`) act on the calling thread's connections; the loop's thread
        has none (the chain runs on the web pool, and each call there closes its own)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return
        response: HttpResponseBase | None = None

        async def process_request() -> None:
            nonlocal response
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client left while it was sent
                await self.send_response(response, send)

        # Watch for the client leaving while the response is made (a wait is then given up).
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        processing = asyncio.create_task(process_request())
        try:
            await asyncio.wait([listening, processing], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server gave up on this request
            listening.cancel()
            processing.cancel()
            raise
        # The tasks' errors are looked at, never raised here and caught: an error raised in this
        # frame would refer to it, and through it to the task that holds the error (a cycle
        # that kept each request's objects until the cycle collector ran).
        listening.cancel()
        listening.add_done_callback(_looked_at)
        if not processing.done():  # the client left first: the view stops
            processing.cancel()
            await asyncio.wait([processing])
        self._end(request, response, body_file)
        error = None if processing.cancelled() else processing.exception()
        if error is not None and not isinstance(error, RequestAborted):
            raise error

    def _end(self, request: HttpRequest, response: HttpResponseBase | None, body_file: IO[bytes]) -> None:
        if response is None:
            signals.request_finished.send(sender=self.__class__)
        else:
            response.close()  # sends request_finished
        body_file.close()
        # Django's request refers to itself (its lazy user and the like hold it): what it
        # holds goes now, rather than when the cycle collector next runs.
        request.__dict__.clear()

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        created = super().create_request(scope, body_file)
        if created[0] is not None:
            created[0].META[DEFERRABLE] = True
        return created

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await super().run_get_response(request)
        if isinstance(response, Deferred):
            _let_go(request, response)
            await response.resolve()
        return response


def _let_go(request: HttpRequest, response: Deferred) -> None:
    """Before a deferred response's wait, what made it goes: Django's and DRF's requests,
    the view and the URL match (and what they refer to). Only the response waits, and a
    process holding thousands of waiting requests holds that much less for each.

    The response's closers run now (they let go of the view and the request; the response
    has no content to close yet); `request_finished` is still sent when it is closed."""
    closers, response._resource_closers = response._resource_closers, []  # type: ignore[attr-defined]  # untyped in the stubs
    for closer in closers:
        closer()
    request.__dict__.clear()


def _looked_at(task: asyncio.Task[Any]) -> None:
    """A task's error is retrieved (asyncio would log it as never retrieved)."""
    if not task.cancelled():
        task.exception()


def deferrable(request: Any) -> bool:
    """Whether this request is served by the handler above (not by WSGI or a test client)."""
    return bool(request.META.get(DEFERRABLE))


def get_asgi_application() -> PlatformASGIHandler:
    """The handler, once Django is set up (as `django.core.asgi.get_asgi_application`)."""
    django.setup(set_prefix=False)
    return PlatformASGIHandler()
