"""The audit log in the admin (read-only), and the mixin that records what admin pages change
where no service does it (an agent's overrides, its tools' permissions, an API key's settings).

The pages other libraries bring are recorded the same way, registered again here with the
mixin: Django's users and groups (with their permissions; password hashes redacted),
django-otp's TOTP devices (keys redacted), and django-axes' access attempts, whose deletion
lifts a lockout (`unlocked`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from agentplatform.admin_site import ReadOnly
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agentplatform.audit.services import Snapshot, as_stored, record_change, snapshot
from agentplatform.users import User


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
    (model: (target type, fields)). Rows this page adds are recorded by the service it calls, or,
    with `audit_additions`, by this page (for models no service of ours writes)."""

    audit_target: ClassVar[TargetType]
    audit_fields: ClassVar[tuple[str, ...]]
    audit_inlines: ClassVar[dict[type[models.Model], tuple[TargetType, tuple[str, ...]]]] = {}
    audit_additions: ClassVar[bool] = False  # record the rows this page adds (no service of ours does)
    audit_delete_action: ClassVar[Action | None] = None  # what a deletion means, if not `deleted`

    def save_model(self, request: HttpRequest, obj: Any, form: BaseModelForm, change: bool) -> None:
        if change:
            form.audit_before = as_stored(obj, self.audit_fields)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: BaseModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # many-to-many fields and inlines
        before = getattr(form, "audit_before", None)
        if before is not None or (not change and self.audit_additions):
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
            self._record_deletion(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                self._record_deletion(request, obj)
            super().delete_queryset(request, queryset)

    def _record_deletion(self, request: HttpRequest, obj: Any) -> None:
        before = snapshot(obj, self.audit_fields)
        record_change(_actor(request), self.audit_target, obj, before, None, action=self.audit_delete_action)


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request, Channel.ADMIN)


def _reregister(model: type[models.Model], model_admin: type[admin.ModelAdmin]) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


USER_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
    "groups",
    "user_permissions",
    "password",
)


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    audit_target = TargetType.USER
    audit_fields = USER_FIELDS
    audit_additions = True

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:  # noqa: A002  # Django passes `id` by name
        """Django's own page sets the password without `save_model`: the change is recorded here."""
        with transaction.atomic():
            before = User.objects.select_for_update().filter(pk=id).first()
            response = super().user_change_password(request, id, form_url)
            after = User.objects.filter(pk=id).first()
            if before is not None and after is not None and after.password != before.password:
                record_change(
                    _actor(request), TargetType.USER, after, {"password": before.password}, {"password": after.password}
                )
        return response


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    audit_target = TargetType.GROUP
    audit_fields = ("name", "permissions")
    audit_additions = True


class AuditedTOTPDeviceAdmin(AuditedAdmin, TOTPDeviceAdmin):
    audit_target = TargetType.OTP_DEVICE
    audit_fields = ("user", "name", "confirmed", "key", "step", "t0", "digits", "tolerance")
    audit_additions = True


class AuditedAccessAttemptAdmin(AuditedAdmin, AccessAttemptAdmin):
    audit_target = TargetType.SIGN_IN_ATTEMPTS
    audit_fields = ("username", "ip_address", "failures_since_start", "attempt_time")
    audit_delete_action = Action.UNLOCKED


_reregister(User, AuditedUserAdmin)
_reregister(Group, AuditedGroupAdmin)
_reregister(TOTPDevice, AuditedTOTPDeviceAdmin)
_reregister(AccessAttempt, AuditedAccessAttemptAdmin)
