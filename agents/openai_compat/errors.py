"""Errors in OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`, with the
platform's status codes, so that the SDK raises its typed exceptions (BadRequestError,
AuthenticationError, NotFoundError, ...). `code` is the platform's machine-readable code.

The SDK retries some statuses by itself (409, 5xx): every error but 429 and 503 (refused
before anything was written; `Retry-After` says when to come back) says
`x-should-retry: false`, so that a run is never started twice behind the caller's back.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import JsonResponse
from rest_framework.response import Response

from agentplatform.api import errors
from agentplatform.errors import Conflict, NotFound, PlatformError
from agents.errors import AgentNotFound
from agents.models import RunStatus

RETRIED = (429, 503)


class ModelNotFound(NotFound):
    code = "model_not_found"
    default_message = "No such model."


class ApprovalRequired(Conflict):
    code = "approval_required"
    default_message = "The run waits for approval decisions."


class RunFailed(PlatformError):
    status = 502
    code = "run_failed"
    default_message = "The agent did not answer."


class RunInProgress(PlatformError):
    status = 504
    code = "run_in_progress"
    default_message = "The run has not finished within the wait limit; it goes on."


TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
SERVER = 500


def error_type(status: int) -> str:
    return "server_error" if status >= SERVER else TYPES.get(status, "invalid_request_error")


def body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "code": code, "param": param}}


def _headers(status: int, headers: dict[str, str] | None = None) -> dict[str, str]:
    out = dict(headers or {})
    if status not in RETRIED:
        out["x-should-retry"] = "false"
    return out


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The platform's error (as `agentplatform.api.errors` maps it), in OpenAI's shape."""
    if isinstance(exc, AgentNotFound):  # the model named is an agent's name
        exc = ModelNotFound(exc.message, details={"param": "model"})
    response = errors.exception_handler(exc, context)
    if response is None:
        return None
    error = response.data["error"]
    status = response.status_code
    headers = {name: value for name, value in response.items() if name.lower() != "content-type"}
    shaped = body(status, error["code"], error["message"], _param(error["code"], error["details"]))
    return Response(shaped, status=status, headers=_headers(status, headers))


def _param(code: str, details: Any) -> str | None:
    """The request field at fault, where the error names one."""
    if not isinstance(details, dict) or not details:
        return None
    for key in ("param", "field"):
        if isinstance(details.get(key), str):
            return str(details[key])
    first = next(iter(details))
    if code == "invalid_request" and isinstance(details[first], list | dict) and first != "non_field_errors":
        return str(first)  # a body that does not validate: the first field refused
    return None


def error_response(exc: PlatformError) -> JsonResponse:
    """`exc` answered outside DRF's handling (a response resolved once a run has finished)."""
    param = _param(exc.code, exc.details)
    return JsonResponse(body(exc.status, exc.code, exc.message, param), status=exc.status, headers=_headers(exc.status))


def unfinished(run_pk: UUID, status: str, error: dict[str, Any] | None, approval_ids: list[str]) -> PlatformError:
    """Why a run waited for has no answer for a chat completion (it is not completed)."""
    where = f"GET /api/v1/runs/{run_pk}/"
    details = {"run_id": str(run_pk)}
    if status == RunStatus.AWAITING_APPROVAL:
        ids = ", ".join(approval_ids)
        message = f"Run {run_pk} waits for approval decisions ({ids}); once they are made, its answer is at {where}."
        return ApprovalRequired(message, details={**details, "approval_ids": approval_ids})
    if status in (RunStatus.FAILED, RunStatus.CANCELLED):
        error = error or {}
        failed = RunFailed(f"Run {run_pk} {status}: {error.get('message') or 'no answer'}", details=details)
        failed.code = str(error.get("code") or status)
        return failed
    return RunInProgress(f"Run {run_pk} is still {status}; its answer will be at {where}.", details=details)
