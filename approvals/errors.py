"""The approvals app's typed errors (mapped to HTTP by agentplatform.api.errors)."""

from agentplatform.errors import Conflict, Forbidden, InvalidInput, NotFound, PlatformError


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


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    default_message = "No such webhook endpoint."


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    default_message = "No such webhook delivery."


class NotAllowedToManageWebhooks(Forbidden):
    code = "webhooks_forbidden"
    default_message = "Managing webhooks needs an API key with the 'webhooks:manage' scope, or staff."


class InvalidWebhookUrl(InvalidInput):
    code = "invalid_webhook_url"
    default_message = "The webhook URL is not a valid http(s) URL with a host that resolves."


class WebhookUrlRefused(InvalidInput):
    code = "webhook_url_refused"
    default_message = "The webhook URL resolves to a private, loopback or link-local address."


class WebhookDisabled(Conflict):
    code = "webhook_disabled"
    default_message = "The webhook endpoint is disabled."


class WebhookSecretUnreadable(PlatformError):
    """Never reaches a caller: recorded on the delivery attempt that could not be signed."""

    status = 500
    code = "webhook_secret_unreadable"
    default_message = "The endpoint's secret cannot be decrypted: was AGENTPLATFORM_WEBHOOK_SECRETS_KEY changed?"
