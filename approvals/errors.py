"""The approvals app's typed errors (mapped to HTTP by agentplatform.api.errors)."""

from agentplatform.errors import Conflict, Forbidden, InvalidInput, NotFound


class ApprovalNotFound(NotFound):
    code = "approval_not_found"
    default_message = "No such approval request."


class AlreadyDecided(Conflict):
    code = "approval_already_decided"
    default_message = "This approval request has already been decided."


class ApprovalExpired(Conflict):
    code = "approval_expired"
    default_message = "This approval request has expired."


class NotAllowedToDecide(Forbidden):
    code = "approval_forbidden"
    default_message = "You may not decide approval requests."


class InvalidArguments(InvalidInput):
    code = "invalid_arguments"
    default_message = "The edited arguments do not match the tool's schema."
