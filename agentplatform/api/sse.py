"""Server-Sent Events responses: proxy-safe headers, and errors as an SSE `error` event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

from agentplatform.draining import unless_draining

# One event, as the OpenAPI schema describes a text/event-stream response (each event, in 3.0).
EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event": {"type": "string", "description": "The run event's type, or `error`."},
        "data": {"type": "string", "description": "The event as JSON."},
        "retry": {"type": "integer"},
    },
}
ERROR_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["error"]},
        "data": {"type": "string", "description": 'The error as JSON: `{"error": {"code", "message", "details"}}`.'},
    },
    "required": ["event", "data"],
}

HEARTBEAT = ": keep-alive\n\n"
OPENED = ": stream opened\n\n"  # a first byte at once: the headers reach the client before the first event
RECONNECT = "retry: 1000\n: the server is stopping; reconnect\n\n"  # reconnect in a second


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through content negotiation.

    Streams bypass renderers; this renders only error bodies, as one `error` event, so an
    EventSource client gets a readable reason along with the status code.
    """

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return f"event: error\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _opened(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, until it ends or the process stops: then a reconnect hint, and the end
    (an EventSource reconnects, to another process, and resumes after its Last-Event-ID)."""
    yield OPENED
    while True:
        try:
            more, chunk = await unless_draining(anext(stream))
        except StopAsyncIteration:
            return
        if not more:
            yield RECONNECT
            return
        assert chunk is not None
        yield chunk


def event_stream_response(stream: AsyncIterator[str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_opened(stream), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
