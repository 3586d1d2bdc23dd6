from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Approval requests and decisions, expiry and webhooks (the approvals issue)."""

    name = "approvals"
