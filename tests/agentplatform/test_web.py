"""The web process's listening port (agentplatform.web)."""

from __future__ import annotations

import socket
from typing import cast

from twisted.internet import protocol, tcp
from twisted.internet.interfaces import IProtocolFactory

from agentplatform.supervisor import LISTEN_BACKLOG
from agentplatform.web import accept_eagerly, with_backlog


class _Reactor:
    """What a port and its connections ask of a reactor when they start and stop reading."""

    def addReader(self, reader: object) -> None: ...  # noqa: N802
    def removeReader(self, reader: object) -> None: ...  # noqa: N802
    def addWriter(self, writer: object) -> None: ...  # noqa: N802
    def removeWriter(self, writer: object) -> None: ...  # noqa: N802


class _Counting(protocol.Factory):
    def __init__(self) -> None:
        self.connections: list[protocol.Protocol] = []

    @property
    def accepted(self) -> int:
        return len(self.connections)

    def buildProtocol(self, addr: object) -> protocol.Protocol:  # noqa: N802
        self.connections.append(protocol.Protocol())
        return self.connections[-1]


def _turns(eager: bool) -> list[int]:
    """Connections one turn of the loop accepts: one client waiting, then 300 at once."""
    factory = _Counting()
    listening = cast(IProtocolFactory, factory)
    port = tcp.Port(0, listening, backlog=LISTEN_BACKLOG, interface="127.0.0.1", reactor=_Reactor())
    port.startListening()
    if eager:
        accept_eagerly(port)
    clients: list[socket.socket] = []
    try:
        accepted = []
        for waiting in (1, 300):
            before = factory.accepted
            clients += [socket.create_connection(("127.0.0.1", port.getHost().port)) for _ in range(waiting)]
            port.doRead()
            accepted.append(factory.accepted - before)
        return accepted
    finally:
        for client in clients:
            client.close()
        for connection in factory.connections:
            cast(tcp.Server, connection.transport).socket.close()
        port.socket.close()


def test_after_a_quiet_moment_a_burst_of_clients_is_accepted_in_one_turn_not_one_at_a_time():
    # Twisted alone: after a turn that found one client, the next accepts one
    assert _turns(eager=False) == [1, 1]
    # The web process's port: every client waiting is accepted
    assert _turns(eager=True) == [1, 300]


def test_a_tcp_endpoint_listens_with_the_long_queue_unless_it_says_otherwise():
    assert with_backlog("tcp:8000:interface=127.0.0.1") == f"tcp:8000:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"
    assert with_backlog("tcp:8000:backlog=10") == "tcp:8000:backlog=10"
    assert with_backlog("unix:/tmp/web.sock") == "unix:/tmp/web.sock"
