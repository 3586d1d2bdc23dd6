"""The OpenAPI schema's view of every operation: the error answers any of them can give."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

from agentplatform.api.base import ErrorSerializer
from agentplatform.api.sse import ERROR_EVENT_SCHEMA

# What any operation may answer, in the error format: bad query parameters, no or a bad key,
# an id that names nothing the caller owns, no acceptable media type, a dependency away (503).
ANY_OPERATION = ("400", "401", "403", "404", "406", "503")
# And one that changes something: a state that does not allow it (409), a body too large or not JSON.
CHANGING = ("409", "413", "415")
EVENT_STREAM = "text/event-stream"


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        statuses = ANY_OPERATION + (CHANGING if self.method in ("POST", "PUT", "PATCH", "DELETE") else ())
        for status in statuses:
            if status not in responses:
                responses[status] = self._get_response_for_code(ErrorSerializer, status, direction=direction)
        return responses

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: Any = "response"
    ) -> Any:
        if not _is_error(serializer):
            return super()._get_response_for_code(serializer, status_code, media_types, direction)
        response = super()._get_response_for_code(serializer, status_code, ["application/json"], direction)
        if any(renderer.media_type == EVENT_STREAM for renderer in self.view.get_renderers()):
            # A client that accepts only events gets the error as one `error` event.
            response["content"][EVENT_STREAM] = {"schema": ERROR_EVENT_SCHEMA}
        return response


def _is_error(serializer: Any) -> bool:
    return serializer is ErrorSerializer or isinstance(serializer, ErrorSerializer)
