"""How the OpenAPI schema describes the LangGraph endpoints: LangGraph's bodies as loose JSON
(their shapes are LangGraph's, documented by its SDK), its error shape, and the `X-Api-Key`
header the SDK authenticates with."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from agentplatform.api.schema import EVENT_STREAM

TAG = "LangGraph"
OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
OBJECTS: dict[str, Any] = {"type": "array", "items": OBJECT}
ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail", "code"],
}
ERROR_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["error"]},
        "data": {"type": "string", "description": 'The error as JSON: `{"detail", "code"}`.'},
    },
    "required": ["event", "data"],
}
STREAM_PART: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "`<event seq>-<index>`: what `Last-Event-ID` resumes after."},
        "event": {"type": "string", "description": "`metadata`, a stream mode's event (`values`, ...), or `error`."},
        "data": {"type": "string", "description": "The part as JSON."},
    },
}
# What any LangGraph operation may answer in LangGraph's error shape (a body that does not
# validate is 422, as LangGraph's server answers it), and one that changes something.
ANY_OPERATION = ("401", "403", "404", "406", "422", "503")
CHANGING = ("409", "413", "415")


class LangGraphSchema(openapi.AutoSchema):
    """The platform's operation schema without its error format: LangGraph's instead."""

    def get_tags(self) -> list[str]:
        return [TAG]

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        streams = any(renderer.media_type == EVENT_STREAM for renderer in self.view.get_renderers())
        statuses = ANY_OPERATION + (CHANGING if self.method in ("POST", "PATCH", "DELETE") else ())
        for status in statuses:
            content = {"application/json": {"schema": ERROR}}
            if streams:  # a client that accepts only events gets the error as one `error` event
                content[EVENT_STREAM] = {"schema": ERROR_EVENT}
            responses.setdefault(status, {"description": "An error, in LangGraph's shape.", "content": content})
        return responses


class ApiKeyHeaderScheme(OpenApiAuthenticationExtension):
    target_class = "agents.auth.ApiKeyHeaderAuthentication"
    name = "LangGraphApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "An API key, as LangGraph's SDK sends it (`Authorization: Bearer` works too).",
        }
