"""Reads of approval requests, scoped to what a caller may see."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from approvals.errors import ApprovalNotFound
from approvals.models import ApprovalRequest, ApprovalStatus


def owned_requests(owner: Any) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(owner=owner).select_related("agent", "decided_by")


def get_request(owner: Any, request_id: UUID | str) -> ApprovalRequest:
    try:
        return owned_requests(owner).get(pk=request_id)
    except (ApprovalRequest.DoesNotExist, ValueError):
        raise ApprovalNotFound(f"No approval request {request_id}.") from None


def run_requests(run_id: UUID) -> list[ApprovalRequest]:
    return list(ApprovalRequest.objects.filter(run_id=run_id).order_by("requested_at", "call_id"))


def pending_ids(session_id: UUID) -> list[str]:
    rows = ApprovalRequest.objects.filter(session_id=session_id, status=ApprovalStatus.PENDING)
    return [str(pk) for pk in rows.order_by("requested_at", "id").values_list("pk", flat=True)]


def has_pending(run_id: UUID) -> bool:
    return ApprovalRequest.objects.filter(run_id=run_id, status=ApprovalStatus.PENDING).exists()
