"""Webhooks in the admin: endpoints (secret shown once), deliveries with every attempt, resend."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agentplatform.admin_site import LagTolerantChangelist
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Channel
from agentplatform.errors import PlatformError
from approvals import webhooks
from approvals.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVERIES_SHOWN = 20
ATTEMPT_FIELDS = ("number", "trigger", "started_at", "status_code", "latency_ms", "error", "response_excerpt")
DELIVERY_FIELDS = (
    "id",
    "endpoint",
    "event_id",
    "event_type",
    "status",
    "attempt_count",
    "next_attempt_at",
    "delivered_at",
    "created_at",
    "body",
)


class WebhookEndpointForm(forms.ModelForm):
    """The service's checks (the URL after DNS resolution, the event types) run with the form's."""

    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple)
    secret = forms.CharField(
        required=False,
        min_length=16,
        max_length=200,
        widget=forms.PasswordInput,
        help_text="Leave empty to generate one on creation (shown once) or to keep the current one.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["owner", "url", "description", "event_types", "enabled", "all_owners"]

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.errors or data is None:
            return data
        try:
            webhooks.check_url(data["url"])
            webhooks.check_all_owners(data["owner"], data["all_owners"])
        except PlatformError as exc:
            self.add_error((exc.details or {}).get("field", "url"), exc.message)
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "owner", "events", "enabled", "all_owners", "created_at"]
    list_filter = ["enabled", "all_owners"]
    search_fields = ["url", "description", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["recent_deliveries", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["owner", "url", "description", "event_types", "enabled", "all_owners", "secret"]}),
        ("Deliveries", {"fields": ["recent_deliveries", "created_at", "updated_at"]}),
    ]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="events")
    def events(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types)

    @admin.display(description="Recent deliveries")
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        rows = WebhookDelivery.objects.filter(endpoint=endpoint)[:DELIVERIES_SHOWN]
        return format_html_join(
            "\n",
            "<div><a href='{}'>{}</a> <code>{}</code> <b>{}</b> ({} attempt(s))</div>",
            (
                (
                    reverse("admin:approvals_webhookdelivery_change", args=[d.pk]),
                    d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    d.event_type,
                    d.status,
                    d.attempt_count,
                )
                for d in rows
            ),
        ) or SafeString("<p>None yet.</p>")

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {name: data[name] for name in ("url", "description", "event_types", "enabled", "all_owners")}
        actor = Actor.from_request(request, Channel.ADMIN)
        if change:
            webhooks.update_endpoint(obj, {**fields, "secret": data.get("secret") or None}, actor=actor)
            return
        endpoint, secret = webhooks.create_endpoint(
            owner=data["owner"], actor=actor, secret=data.get("secret") or None, **fields
        )
        obj.pk, obj.secret_encrypted, obj.created_at = endpoint.pk, endpoint.secret_encrypted, endpoint.created_at
        obj._state.adding = False
        messages.warning(
            request,
            format_html("Signing secret (shown once, copy it now): <code id='new-webhook-secret'>{}</code>", secret),
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhooks.delete_endpoint(obj, actor=Actor.from_request(request, Channel.ADMIN))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = Actor.from_request(request, Channel.ADMIN)
        for endpoint in queryset:
            webhooks.delete_endpoint(endpoint, actor=actor)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LagTolerantChangelist):
    list_display = ["event_type", "endpoint", "status", "attempt_count", "last_result", "created_at", "delivered_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["id", "event_id", "endpoint__url"]
    list_select_related = ["endpoint"]
    inlines = [WebhookAttemptInline]
    readonly_fields = DELIVERY_FIELDS
    fields = DELIVERY_FIELDS
    actions = ["resend"]

    @admin.display(description="payload")
    def body(self, delivery: WebhookDelivery) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(delivery.payload), indent=2, ensure_ascii=False))

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).prefetch_related("attempts")

    @admin.display(description="last attempt")
    def last_result(self, delivery: WebhookDelivery) -> str:
        last = max(delivery.attempts.all(), key=lambda attempt: attempt.number, default=None)
        if last is None:
            return ""
        return f"{last.status_code or ''} {last.error} ({last.latency_ms} ms)".strip()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("approvals.change_webhookendpoint"))

    @admin.action(description="Resend selected deliveries (one attempt each, now)", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        sent = 0
        for delivery in queryset.select_related("endpoint"):
            try:
                webhooks.resend(delivery)
            except PlatformError as exc:
                self.message_user(request, f"{delivery.pk}: {exc.message}", messages.ERROR)
            else:
                sent += 1
        self.message_user(request, f"{sent} deliver(y/ies) sent again.", messages.SUCCESS)
