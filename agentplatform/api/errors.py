"""Every API error, whatever raised it, answers `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from psycopg_pool import PoolTimeout
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf
from rest_framework.response import Response

from agentplatform.errors import PlatformError, RateLimited, Unavailable

_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_json",
    drf.NotAuthenticated: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _validation_message(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict) and detail:
        field, value = next(iter(detail.items()))
        name = field if field != "non_field_errors" else ""
        return _validation_message(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0], prefix)
    return f"{prefix}: {detail}" if prefix else str(detail)


def _from_drf(exc: drf.APIException) -> tuple[str, str, Any]:
    if isinstance(exc, drf.ValidationError):
        return "invalid_request", _validation_message(exc.detail), exc.detail
    if isinstance(exc, drf.AuthenticationFailed):
        codes = exc.get_codes()
        return (codes if isinstance(codes, str) else "authentication_failed"), str(exc.detail), None
    code = next((c for kind, c in _DRF_CODES.items() if isinstance(exc, kind)), "error")
    return code, str(exc.detail), None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _unavailable(exc) or exc  # a database pool exhausted, Redis away: try again
    if isinstance(exc, PlatformError):
        return platform_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    if not isinstance(exc, drf.APIException):
        return None  # a bug: Django's 500 handler answers (JSON under /api/, see below)
    code, message, details = _from_drf(exc)
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(int(wait))
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


def platform_response(exc: PlatformError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, RateLimited):
        headers = exc.headers
    return Response(error_body(exc.code, exc.message, exc.details), status=exc.status, headers=headers)


def _unavailable(exc: Exception) -> Unavailable | None:
    """What a request path raises when a service it needs is saturated or away (not a bug)."""
    if isinstance(exc, PoolTimeout) or isinstance(exc.__cause__, PoolTimeout):  # Django wraps it
        return DatabaseBusy(details={"dependency": "database"})
    if isinstance(exc, OperationalError):  # the connection broke, the server restarts, ...: not a bug
        return DatabaseUnavailable(details={"dependency": "database"})
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return BrokerUnavailable(details={"dependency": "redis"})
    return None


class DatabaseBusy(Unavailable):
    code = "database_busy"
    default_message = "Every database connection is in use; try again shortly."
    retry_after = 2


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    default_message = "The database could not answer this request; try again shortly."
    retry_after = 2


class WebOverloaded(Unavailable):
    code = "overloaded"
    default_message = "This server has too many requests waiting; try again shortly."
    retry_after = 1


def unavailable_response(exc: Unavailable) -> HttpResponse:
    """The answer `platform_response` gives, for a request refused before Django handles it."""
    body = error_body(exc.code, exc.message, exc.details)
    return JsonResponse(body, status=exc.status, headers={"Retry-After": str(exc.retry_after)})


class BrokerUnavailable(Unavailable):
    code = "redis_unavailable"
    default_message = "Redis (the broker and event bus) cannot be reached; try again shortly."


OPENAI_PREFIX = "/openai/"


def _openai_error(code: str, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/langgraph/"):  # LangGraph's shape (agents.langgraph)
        return JsonResponse({"detail": "Not Found", "code": "not_found"}, status=404)
    if request.path.startswith(OPENAI_PREFIX):  # OpenAI's shape (agents.openai_compat)
        return JsonResponse(_openai_error("not_found", "No such endpoint.", "invalid_request_error"), status=404)
    if request.path.startswith(("/api/", "/ag-ui/")):
        # No route matched: an unknown path, or an id in it that is not one (ids are UUIDs).
        return JsonResponse(error_body("not_found", "No such endpoint, or no object with this id."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(OPENAI_PREFIX):
        body = _openai_error("internal_error", "An unexpected error occurred.", "server_error")
        return JsonResponse(body, status=500)
    if request.path.startswith(("/api/", "/ag-ui/")):
        return JsonResponse(error_body("internal_error", "An unexpected error occurred."), status=500)
    return defaults.server_error(request)
