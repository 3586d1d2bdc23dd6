"""The approvals app in the admin. Webhooks live in their own module; the approvals inbox comes here."""

from approvals import webhook_admin  # noqa: F401  # registers the webhook admin classes
