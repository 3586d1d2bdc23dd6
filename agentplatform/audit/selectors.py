"""Reading the audit log."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from agentplatform.audit.models import AuditEntry


def entries(
    *,
    action: str = "",
    target_type: str = "",
    target_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries, newest first, filtered by what is given (`since` inclusive, `until` exclusive)."""
    rows = AuditEntry.objects.all()
    if action:
        rows = rows.filter(action=action)
    if target_type:
        rows = rows.filter(target_type=target_type)
    if target_id:
        rows = rows.filter(target_id=target_id)
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    return rows.order_by("-created_at", "-id")
