"""The agents app's typed errors (mapped to HTTP by agentplatform.api.errors)."""

from enum import StrEnum

from agentplatform.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, PlatformError, Unavailable


class AgentNotFound(NotFound):
    code = "agent_not_found"
    default_message = "No such agent."


class AgentDisabled(Conflict):
    code = "agent_disabled"
    default_message = "This agent is disabled by an operator."


class AgentUnavailable(Conflict):
    code = "agent_unavailable"
    default_message = "This agent is not loaded in this deployment's code."


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_message = "No such session."


class SessionAgentMismatch(InvalidInput):
    code = "session_agent_mismatch"
    default_message = "This session belongs to another agent."


class SessionBusy(Conflict):
    code = "session_busy"
    default_message = "This session already has an active run."


class ApprovalPending(Conflict):
    code = "approval_pending"
    default_message = "This session waits for approval decisions."


class RunNotFound(NotFound):
    code = "run_not_found"
    default_message = "No such run."


class RunNotActive(Conflict):
    code = "run_not_active"
    default_message = "The run has already finished."


class IdempotencyKeyReused(PlatformError):
    status = 422
    code = "idempotency_key_reused"
    default_message = "This Idempotency-Key was used with a different request."


class InputTooLarge(PayloadTooLarge):
    code = "input_too_large"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ApiKeyRejected(PlatformError):
    """A bearer key that does not authenticate; `code` says why."""

    status = 401
    code = "invalid_api_key"
    default_message = "Unknown API key."


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"
    default_message = "No such schedule."


class InvalidSchedule(InvalidInput):
    """A schedule that cannot be kept; `details["field"]` names the field at fault."""

    code = "invalid_schedule"
    default_message = "The schedule is invalid."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", details={"field": field})


class Overloaded(Unavailable):
    code = "overloaded"
    default_message = "Too many runs are waiting for a worker; try again shortly."


class RunFailure(StrEnum):
    """Why a run ended without an answer: the `code` of its `error` (machine-readable)."""

    AGENT_ERROR = "agent_error"  # the agent's own code raised
    PROVIDER_ERROR = "provider_error"  # the model provider refused or failed, after retries
    MAX_STEPS_EXCEEDED = "max_steps_exceeded"
    PREPARATION_ERROR = "preparation_error"  # preparing its context failed unexpectedly
    CANCELLED = "cancelled"
    APPROVAL_EXPIRED = "approval_expired"  # a request it waited on expired with its default action
    WORKER_LOST = "worker_lost"  # its worker stopped renewing its lease
