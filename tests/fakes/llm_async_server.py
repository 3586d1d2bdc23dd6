"""The fake model server on asyncio, for load: thousands of concurrent calls from one thread.

Same wire formats and replies as `llm_server` (OpenAI Chat Completions and Anthropic
Messages, plain JSON and SSE streaming, a `responder` or the default "ok", every answer
built by `llm_server.answer`), with an optional fixed latency per call that is an
`asyncio.sleep`, not a thread: a call that waits costs one coroutine and one socket. It
records no request bodies (under load they would only grow); `calls` counts them.

    python -m tests.fakes.llm_async_server --mode one-tool-call --latency 0.5 --port N
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Self

from tests.fakes.llm_server import (
    JSON,
    Answer,
    Delay,
    Error,
    RecordedRequest,
    Reply,
    Responder,
    Text,
    answer,
    answer_bad_request,
    cli_arguments,
    one_tool_call_responder,
    parse_json,
    route,
)

MAX_HEAD = 64 * 1024
STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


class BadRequest(Exception):
    """A request this server cannot parse: it answers nothing and closes the connection."""


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str], bool]:
    """Method, path (no query), lower-cased headers, and whether the connection stays open."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(lines[0][:100])
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return method, target.split("?", 1)[0], headers, keep_alive


def _encode(out: Answer, keep_alive: bool) -> bytes:
    """The whole response: a JSON body with Content-Length, or the SSE events chunked."""
    lines = [f"HTTP/1.1 {out.status} {STATUS_TEXT.get(out.status, 'Error')}", f"Content-Type: {out.content_type}"]
    lines += [f"{name}: {value}" for name, value in out.headers.items()]
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    if out.events is None:
        lines.append(f"Content-Length: {len(out.body)}")
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + out.body
    lines.append("Transfer-Encoding: chunked")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in out.events)
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + chunks + b"0\r\n\r\n"


class AsyncFakeLLM:
    """The protocol handler: one coroutine per connection, requests answered in order."""

    def __init__(self, responder: Responder | None = None, latency: float = 0.0) -> None:
        self.responder = responder
        self.latency = latency
        self.calls = 0
        self.connections = 0
        self.waiting = 0  # calls in their latency now
        self.most_waiting = 0  # the most that were at once

    def reply_to(self, request: RecordedRequest) -> Reply:
        try:
            return self.responder(request) if self.responder is not None else Text("ok")
        except Exception as exc:  # noqa: BLE001 - a broken responder should show up as an HTTP 500
            return Error(500, f"fake server responder failed: {exc!r}")

    async def _respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Answer:
        protocol, served = route(path, headers)
        body: JSON | None = parse_json(raw)
        request = RecordedRequest(protocol, path, headers, body if body is not None else {})
        refused = answer_bad_request(request, method, body, served)
        if refused is not None:
            return refused
        self.calls += 1
        if self.latency > 0:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self.waiting -= 1
        reply = self.reply_to(request)
        while isinstance(reply, Delay):
            await asyncio.sleep(reply.seconds)
            reply = reply.then
        return answer(request, reply)

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            keep_alive = True
            while keep_alive:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return  # closed between requests, or a head too large to be ours
                method, path, headers, keep_alive = _parse_head(head[:-4])
                raw = await reader.readexactly(int(headers.get("content-length") or 0))
                writer.write(_encode(await self._respond(method, path, headers, raw), keep_alive))
                await writer.drain()
        except (BadRequest, ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self.connections -= 1
            writer.close()

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.serve_connection, host, port, limit=MAX_HEAD, backlog=4096)


async def _shut_down(server: asyncio.Server) -> None:
    server.close()
    handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()
    await asyncio.sleep(0)  # the transports' close callbacks run before the loop stops


class AsyncFakeLLMServer:
    """The asyncio server on its own event loop in a background thread (for tests)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, responder: Responder | None = None, latency: float = 0.0
    ) -> None:
        self.host, self.port = host, port
        self.handler = AsyncFakeLLM(responder, latency)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._server = self._loop.run_until_complete(self.handler.start(self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-llm-async-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, end every open connection (their sockets closed on the loop), then the loop."""
        if self._server is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(_shut_down(self._server), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _serve_until_signalled(handler: AsyncFakeLLM, host: str, port: int) -> None:
    server = await handler.start(host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    bound = server.sockets[0].getsockname()
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    async with server:
        await stopping.wait()


def main(argv: list[str] | None = None) -> None:
    args = cli_arguments("Fake OpenAI/Anthropic LLM server on asyncio, for load tests.", argv)
    responder = one_tool_call_responder if args.mode == "one-tool-call" else None
    asyncio.run(_serve_until_signalled(AsyncFakeLLM(responder, args.latency), args.host, args.port))


if __name__ == "__main__":
    main()
