"""Daphne alone: a bare ASGI app that accepts every WebSocket and echoes what it receives.

No Django, no Channels, no channel layer: the streaming benchmark serves it with its own
Daphne process (`daphne bench.echo_asgi:application`) to measure what an idle connection
costs in Daphne itself, for comparison with the platform's `/ws/sessions/{id}/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]


async def application(
    scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    if scope["type"] == "http":
        await receive()
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"WebSocket only\n"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
        else:  # websocket.disconnect
            return
