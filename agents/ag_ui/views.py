"""AG-UI endpoint: parse the `RunAgentInput`, start (or resume) the run, answer with its AG-UI
event stream. Errors before the stream are the platform's JSON errors with their 4xx; once
the stream has begun, a failure is a RUN_ERROR event."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from agentplatform.api.base import CallerAPIView
from agentplatform.api.schema import EVENT_STREAM
from agentplatform.api.sse import EventStreamRenderer, event_stream_response
from agents.ag_ui import conversation, runs, streams
from agents.auth import ApiKeyAuthentication

RUN_AGENT_INPUT: dict[str, Any] = {
    "type": "object",
    "description": "AG-UI's RunAgentInput: threadId, runId, messages, tools, state, context, forwardedProps, resume.",
    "properties": {"threadId": {"type": "string"}, "runId": {"type": "string"}, "messages": {"type": "array"}},
    "required": ["threadId", "runId", "messages"],
    "additionalProperties": True,
}
AG_UI_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "string", "description": "One AG-UI event as JSON: RUN_STARTED, TEXT_MESSAGE_*, ..."},
    },
}


class AgUiRunView(CallerAPIView):
    authentication_classes = [ApiKeyAuthentication]
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        tags=["AG-UI"],
        request={"application/json": RUN_AGENT_INPUT},
        responses={(200, EVENT_STREAM): AG_UI_EVENT},
        summary="Run an agent over AG-UI (a thread is a session)",
    )
    def post(self, request: Request, agent: str) -> StreamingHttpResponse:
        parsed = conversation.run_input(request.data)
        started = runs.start(self.owner, self.api_key, agent, parsed, actor=self.actor)
        return event_stream_response(streams.run_stream(parsed, started.run, started.after))
