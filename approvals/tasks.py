"""Celery adapters for approvals."""

from __future__ import annotations

from agentplatform.celery import TaskName, app
from approvals import services


@app.task(name=TaskName.EXPIRE_APPROVALS, expires=25)
def expire_approvals() -> int:
    """Periodic: pending requests past their time take their expiry action."""
    return services.expire_due()
