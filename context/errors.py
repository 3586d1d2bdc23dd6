"""The context app's typed errors (mapped to HTTP by agentplatform.api.errors)."""

from agentplatform.errors import InvalidInput, NotFound


class ContextSourceNotFound(NotFound):
    code = "context_source_not_found"
    default_message = "No such context source."


class InvalidContextSource(InvalidInput):
    code = "invalid_context_source"
    default_message = "The context source's configuration is invalid."
