"""The outside edge of webhooks: which URLs may be called (SSRF), and the POST itself.

A URL's host is resolved and every address it resolves to is checked; the POST then
connects to the address that was checked (the Host header and the TLS server name stay
the URL's), so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot point it elsewhere. Redirects are not followed: a 3xx is a failure.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from approvals.errors import InvalidWebhookUrl, WebhookUrlRefused

DEFAULT_PORTS = {"http": 80, "https": 443}
EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`addresses`, tried in order) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Response:
    status: int
    excerpt: str  # the start of the body, for the attempt log


def check_url(url: str, *, allow_private: bool) -> Target:
    """Parse and resolve `url`; refuse it if any address is not public (unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidWebhookUrl("The URL must be http:// or https:// with a host.", details={"field": "url"})
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("The URL must not contain credentials.", details={"field": "url"})
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise InvalidWebhookUrl("The URL's port is not valid.", details={"field": "url"}) from None
    addresses = _resolve(parts.hostname, port)
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise WebhookUrlRefused(
                    f"{parts.hostname} resolves to {address}, a private, loopback or link-local address.",
                    details={"field": "url", "address": address},
                )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, tuple(addresses))


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise InvalidWebhookUrl(f"The host {host!r} does not resolve.", details={"field": "url"}) from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    """Globally routable unicast: not private, loopback, link-local, shared, reserved or multicast."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """POST `body` to the checked address. Raises OSError (TimeoutError included) or HTTPException."""
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target.host, target.port, addresses=target.addresses, timeout=timeout)
    else:
        connection = _PinnedHTTPConnection(target.host, target.port, addresses=target.addresses, timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        return Response(response.status, response.read(EXCERPT_BYTES).decode("utf-8", "replace"))
    finally:
        connection.close()


def _connect(addresses: tuple[str, ...], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of the checked addresses that accepts one."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, addresses: tuple[str, ...], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, addresses: tuple[str, ...], timeout: float) -> None:
        self.tls: Any = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.addresses = addresses

    def connect(self) -> None:
        # The certificate is verified against the URL's host name (also sent as SNI).
        self.sock = self.tls.wrap_socket(_connect(self.addresses, self.port, self.timeout), server_hostname=self.host)
