"""Typed domain errors. Services raise them; the API maps them to HTTP in one place."""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """An error the caller can act on: an HTTP status, a stable code and a readable message."""

    status: int = 400
    code: str = "invalid_request"
    default_message: str = "The request is invalid."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class InvalidInput(PlatformError):
    status = 400
    code = "invalid_request"


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    default_message = "The pagination cursor is invalid: pass a page's `next` or `previous` link as it is."


class Forbidden(PlatformError):
    status = 403
    code = "permission_denied"
    default_message = "You may not do this."


class NotFound(PlatformError):
    status = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(PlatformError):
    status = 409
    code = "conflict"
    default_message = "The resource is in a state that does not allow this."


class PayloadTooLarge(PlatformError):
    status = 413
    code = "payload_too_large"
    default_message = "The request is too large."


class Unavailable(PlatformError):
    """The platform cannot take this now (overload, a dependency away): nothing was written.
    Answered 503 with `Retry-After`."""

    status = 503
    code = "unavailable"
    default_message = "The service cannot take this request now; try again shortly."
    retry_after: int = 5

    def __init__(self, message: str | None = None, *, details: Any = None, retry_after: int | None = None) -> None:
        super().__init__(message, details=details)
        if retry_after is not None:
            self.retry_after = retry_after


class RateLimited(PlatformError):
    """A caller over one of its limits: nothing was written. Answered 429 with `Retry-After`
    and the `RateLimit-*` headers of the limit crossed (`headers`)."""

    status = 429
    code = "rate_limited"
    default_message = "Too many requests; try again later."

    def __init__(self, message: str | None = None, *, details: Any = None, headers: dict[str, str]) -> None:
        super().__init__(message, details=details)
        self.headers = headers


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"
    default_message = "This key has used its quota; try again when it resets."
