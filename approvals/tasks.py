"""Celery adapters for approvals and webhooks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from agentplatform.celery import TaskName, app
from approvals import services, webhooks


@app.task(name=TaskName.EXPIRE_APPROVALS, expires=25)
def expire_approvals() -> int:
    """Periodic: pending requests past their time take their expiry action."""
    return services.expire_due()


@app.task(
    name=TaskName.DELIVER_WEBHOOK,
    acks_late=True,
    autoretry_for=(webhooks.DeliveryBusy,),
    retry_backoff=1,
    max_retries=8,
)
def deliver_webhook(delivery_id: str, trigger: str) -> dict[str, Any]:
    """One attempt of a webhook delivery (it schedules the next one itself on failure).
    A resend that finds another attempt in flight is retried shortly (DeliveryBusy)."""
    return webhooks.attempt(UUID(delivery_id), trigger)


@app.task(name=TaskName.REQUEUE_WEBHOOKS, expires=60)
def requeue_webhooks() -> dict[str, int]:
    """Periodic: send again pending deliveries that are overdue (a lost task, a dead worker)."""
    return webhooks.requeue_stalled()
