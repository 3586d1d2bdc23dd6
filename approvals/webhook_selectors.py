"""Reads of webhook endpoints and deliveries: a caller's own, and those retention may delete."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from agentplatform.users import User
from approvals.errors import WebhookDeliveryNotFound, WebhookNotFound
from approvals.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def owned_endpoints(owner: User) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(owner=owner)


def get_endpoint(owner: User, endpoint_id: UUID | str) -> WebhookEndpoint:
    try:
        return owned_endpoints(owner).get(pk=endpoint_id)
    except (WebhookEndpoint.DoesNotExist, ValidationError, ValueError):
        raise WebhookNotFound(f"No webhook endpoint {endpoint_id}.") from None


def endpoint_deliveries(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related("attempts")


def get_delivery(owner: User, delivery_id: UUID | str) -> WebhookDelivery:
    rows = WebhookDelivery.objects.filter(endpoint__owner=owner).select_related("endpoint")
    try:
        return rows.prefetch_related("attempts").get(pk=delivery_id)
    except (WebhookDelivery.DoesNotExist, ValidationError, ValueError):
        raise WebhookDeliveryNotFound(f"No webhook delivery {delivery_id}.") from None


def settled_deliveries(created_before: datetime) -> QuerySet[WebhookDelivery]:
    """Deliveries made before then that are over (delivered, or failed for good) and have no
    attempt in flight (a resend): what retention may delete."""
    return (
        WebhookDelivery.objects.filter(created_at__lt=created_before)
        .exclude(status=DeliveryStatus.PENDING)
        .exclude(claimed_until__gt=timezone.now())
    )
