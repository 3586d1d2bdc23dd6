"""A web process: Daphne, stopping gracefully, with a longer listen queue (LISTEN_BACKLOG).
`python -m agentplatform.web` takes Daphne's arguments (`manage.py up` runs it; run it
instead of `daphne` elsewhere too).

On SIGTERM or SIGINT it stops accepting connections (the other processes on the same port
keep serving), ends the streams it serves with an SSE `retry:` hint (an EventSource
reconnects and resumes after its Last-Event-ID), answers the requests waiting for a run
with the run as it is (202, with its id), lets the requests in flight finish, and exits
once none is left, or after WEB_DRAIN_SECONDS at most.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor

from agentplatform import draining
from agentplatform.conf import platform_settings
from agentplatform.supervisor import LISTEN_BACKLOG

logger = logging.getLogger(__name__)


def with_backlog(endpoint: str) -> str:
    """A Twisted endpoint description: a TCP one listens with LISTEN_BACKLOG (as `up`'s shared
    socket does) unless it says otherwise."""
    if endpoint.startswith(("tcp:", "tcp6:")) and ":backlog=" not in endpoint:
        return f"{endpoint}:backlog={LISTEN_BACKLOG}"
    return endpoint


class GracefulServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["endpoints"] = [with_backlog(endpoint) for endpoint in kwargs.get("endpoints") or []]
        super().__init__(*args, **{**kwargs, "signal_handlers": False})
        self.ports: list[Any] = []
        self.draining_since: float | None = None

    def run(self) -> None:
        reactor.callWhenRunning(self._on_signals)
        super().run()

    def _on_signals(self) -> None:
        loop = asyncio.get_event_loop()  # the reactor's
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.drain)

    def listen_success(self, port: Any) -> None:
        accept_eagerly(port)
        self.ports.append(port)
        super().listen_success(port)

    def drain(self) -> None:
        if self.draining_since is not None:
            return
        self.draining_since = time.monotonic()
        for port in self.ports:
            port.stopListening()
        draining.start(asyncio.get_event_loop())
        logger.info("stopping: finishing %d requests and streams", self._in_flight())
        self._stop_when_done()

    def _in_flight(self) -> int:
        instances = (details.get("application_instance") for details in self.connections.values())
        return sum(1 for instance in instances if instance is not None and not instance.done())

    def _stop_when_done(self) -> None:
        assert self.draining_since is not None
        if self._in_flight() and time.monotonic() - self.draining_since < platform_settings().WEB_DRAIN_SECONDS:
            asyncio.get_event_loop().call_later(0.05, self._stop_when_done)  # the reactor runs on asyncio
            return
        self.stop()


def accept_eagerly(port: Any) -> None:
    """Twisted's listening port accepts at most `numberAccepts` connections per turn of the
    event loop, and after a turn that found fewer it lowers that to what it found: to 1 after
    a quiet moment, growing by 20 a turn after that. When thousands of clients connect at
    once to a loop busy with the requests of those already connected, the rest wait in the
    listen queue (and past it, retry their handshakes) for many seconds before they are even
    accepted. The port accepts whatever is waiting instead, up to the listen queue's length,
    each turn."""
    port_class: type = type(port)
    port.__class__ = _eager(port_class)


@functools.cache
def _eager(port_class: type) -> type:
    return type(f"Eager{port_class.__name__}", (port_class,), {"numberAccepts": _AcceptsAll()})


class _AcceptsAll:
    def __get__(self, port: Any, owner: type | None = None) -> int:
        return LISTEN_BACKLOG

    def __set__(self, port: Any, value: int) -> None:
        pass  # Twisted's adjustment, ignored


class GracefulCommandLine(CommandLineInterface):
    server_class = GracefulServer


if __name__ == "__main__":
    GracefulCommandLine.entrypoint()
