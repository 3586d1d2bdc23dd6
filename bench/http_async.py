"""A minimal HTTP/1.1 client on asyncio streams: one keep-alive connection, no pool.

The capacity benchmark holds up to thousands of requests in flight from one process that
shares two cores with the servers it measures, so each request should cost the client as
little as possible: no pool, no per-request client objects, the body framed by hand
(Content-Length, chunked, or to the end of the connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

READ_LIMIT = 1 << 20
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


class ProtocolError(ValueError):
    """A response that is not HTTP/1.1 as we expect it."""


@dataclass(frozen=True)
class Head:
    status: int
    headers: dict[str, str]  # lower-cased names


def _parse_head(raw: bytes) -> Head:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ProtocolError(f"bad status line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Head(int(parts[1]), headers)


def _request_bytes(method: str, path: str, host: str, body: bytes | None, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + (body or b"")


class Connection:
    """One persistent connection to host:port, opened on first use and after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reusable = False

    async def send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> Head:
        """Send a request and read the response's head; the body is read with `body()` or `chunks()`.

        On a kept-alive connection that the server closed meanwhile (no byte of an answer), the
        request is sent once more on a new connection: it never reached the application."""
        data = _request_bytes(method, path, f"{self.host}:{self.port}", body, headers)
        retry = self._reusable
        if not retry:
            self.close()  # never used, or the last body was not read to its end
        try:
            return await self._exchange(data)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.close()
            if not retry or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
        return await self._exchange(data)

    async def _exchange(self, data: bytes) -> Head:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=READ_LIMIT)
        self._reusable = False  # until this response's body has been read to its end
        self._writer.write(data)
        await self._writer.drain()
        return _parse_head((await self._reader.readuntil(b"\r\n\r\n"))[:-4])

    async def chunks(self, head: Head) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection is kept for the next request if the body was framed."""
        reader = self._reader
        assert reader is not None
        if "chunked" in head.headers.get("transfer-encoding", "").lower():
            while size := int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16):
                yield (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")  # the empty trailer
        elif "content-length" in head.headers:
            yield await reader.readexactly(int(head.headers["content-length"]))
        else:
            while piece := await reader.read(65536):
                yield piece
            self.close()
            return
        self._reusable = head.headers.get("connection", "").lower() != "close"
        if not self._reusable:
            self.close()

    async def body(self, head: Head) -> bytes:
        return b"".join([piece async for piece in self.chunks(head)])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._reusable = False
