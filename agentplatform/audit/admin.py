"""The audit log in the admin (read-only), and the mixin that records what admin pages change
where no service does it (an agent's overrides, its tools' permissions, an API key's settings)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.contrib import admin
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agentplatform.admin_site import ReadOnly
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import AuditEntry, Channel, TargetType
from agentplatform.audit.services import Snapshot, as_stored, record_change, snapshot


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly, admin.ModelAdmin):
    # Append-only: nobody adds, changes or deletes an entry here, superusers included.
    list_display = ["created_at", "actor_display", "action", "target_type", "target_label", "channel", "ip"]
    list_filter = ["action", "target_type", "channel", ("actor", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["actor_name", "api_key_prefix", "target_id", "target_label", "=ip", "=request_id"]
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = (
        "created_at",
        "actor_name",
        "api_key_prefix",
        "api_key_id",
        "channel",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "ip",
        "user_agent",
        "request_id",
        "before_shown",
        "after_shown",
    )
    readonly_fields = fields

    @admin.display(description="who", ordering="actor_name")
    def actor_display(self, entry: AuditEntry) -> str:
        who = entry.actor_name or "(nobody signed in)"
        return f"{who} with key {entry.api_key_prefix}…" if entry.api_key_prefix else who

    @admin.display(description="before")
    def before_shown(self, entry: AuditEntry) -> SafeString:
        return _json(entry.before)

    @admin.display(description="after")
    def after_shown(self, entry: AuditEntry) -> SafeString:
        return _json(entry.after)


def _json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


class AuditedAdmin(admin.ModelAdmin):
    """Records the changes and deletions an admin page makes itself, in the page's transaction:
    the row's `audit_fields` before and after, and those of the inline rows in `audit_inlines`
    (model: (target type, fields)). Rows this page adds are recorded by the service it calls."""

    audit_target: ClassVar[TargetType]
    audit_fields: ClassVar[tuple[str, ...]]
    audit_inlines: ClassVar[dict[type[models.Model], tuple[TargetType, tuple[str, ...]]]] = {}

    def save_model(self, request: HttpRequest, obj: Any, form: BaseModelForm, change: bool) -> None:
        if change:
            form.audit_before = as_stored(obj, self.audit_fields)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: BaseModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # many-to-many fields and inlines
        before = getattr(form, "audit_before", None)
        if before is not None:
            after = snapshot(form.instance, self.audit_fields)
            record_change(_actor(request), self.audit_target, form.instance, before, after)

    def save_formset(self, request: HttpRequest, form: BaseModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        audited = self.audit_inlines.get(formset.model) if formset.model is not None else None
        if audited is None:
            super().save_formset(request, form, formset, change)
            return
        target, fields = audited
        edited = [f.instance for f in formset.initial_forms if f.has_changed()]
        befores: dict[Any, Snapshot | None] = {row.pk: as_stored(row, fields) for row in edited}
        super().save_formset(request, form, formset, change)
        for row in edited:
            record_change(_actor(request), target, row, befores[row.pk], snapshot(row, fields))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            record_change(_actor(request), self.audit_target, obj, snapshot(obj, self.audit_fields), None)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                record_change(_actor(request), self.audit_target, obj, snapshot(obj, self.audit_fields), None)
            super().delete_queryset(request, queryset)


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, Channel.ADMIN)
