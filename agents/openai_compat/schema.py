"""How the OpenAPI schema describes the OpenAI-compatible endpoints: OpenAI's bodies as loose
JSON (their shapes are OpenAI's, documented by its SDK and API reference) and its error shape,
`{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

from agentplatform.api.schema import EVENT_STREAM

TAG = "OpenAI"
OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string"},
                "param": {"type": "string", "nullable": True},
            },
            "required": ["message", "type", "code"],
        }
    },
    "required": ["error"],
}
ERROR_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["error"]},
        "data": {"type": "string", "description": "The error as JSON, in OpenAI's shape."},
    },
    "required": ["event", "data"],
}
# What any operation may answer in OpenAI's error shape; and a run that did not give an
# answer in time, or failed, in a call that waits for it (chat completions, responses).
ANY_OPERATION = ("400", "401", "403", "404", "406", "429", "503")
CHANGING = ("409", "413", "415")
WAITING = ("502", "504")


class OpenAISchema(openapi.AutoSchema):
    """The platform's operation schema without its error format: OpenAI's instead."""

    def get_tags(self) -> list[str]:
        return [TAG]

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        streams = any(renderer.media_type == EVENT_STREAM for renderer in self.view.get_renderers())
        statuses = ANY_OPERATION + (CHANGING + WAITING if self.method == "POST" else ())
        for status in statuses:
            content: dict[str, Any] = {"application/json": {"schema": ERROR}}
            if streams:  # a client that accepts only events gets the error as one `error` event
                content[EVENT_STREAM] = {"schema": ERROR_EVENT}
            responses.setdefault(status, {"description": "An error, in OpenAI's shape.", "content": content})
        return responses


STREAM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "Responses: the event's type; chat completions: none."},
        "data": {"type": "string", "description": "The chunk or event as JSON; chat completions end with `[DONE]`."},
    },
}
# A call with `"stream": true` answers Server-Sent Events instead of the JSON object.
ANSWERED = {(200, "application/json"): OBJECT, (200, EVENT_STREAM): STREAM}
