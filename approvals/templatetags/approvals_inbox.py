"""The pending-approvals count on the admin index (one COUNT)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from approvals import selectors

register = template.Library()


@register.inclusion_tag("admin/approvals/pending_banner.html", takes_context=True)
def pending_approvals(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("approvals.view_approvalrequest"):
        return {"show": False}
    url = reverse("admin:approvals_approvalrequest_changelist") + "?status__exact=pending"
    return {"show": True, "count": selectors.pending_count(), "url": url}
