"""Context sources in the admin (bind, configure, preview), and what each run was given."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms.models import construct_instance
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from agentplatform.admin_site import ReadOnly
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Channel
from context import services
from context.errors import InvalidContextSource
from context.models import ContextInjection, ContextSource
from context.providers import provider_choices

_FORM_FIELD = {"provider": "provider", "parameters": "parameters", "credential": "credential_env"}


class ContextSourceForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=provider_choices, help_text="The provider class (registered by import path).")
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="A credential to store encrypted (never shown again). Blank keeps the stored one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the stored credential")

    class Meta:
        model = ContextSource
        fields = [
            "agent",
            "name",
            "provider",
            "parameters",
            "enabled",
            "required",
            "position",
            "timeout_seconds",
            "max_chars",
            "cache_ttl_seconds",
            "credential_env",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        submitted = construct_instance(self, copy.copy(self.instance), self._meta.fields)
        try:
            services.check_source(submitted, secret=cleaned["secret"], clear_secret=cleaned["clear_secret"])
        except InvalidContextSource as exc:
            self.add_error(_FORM_FIELD.get((exc.details or {}).get("field", "")), exc.message)
        return cleaned


@admin.register(ContextSource)
class ContextSourceAdmin(admin.ModelAdmin):
    form = ContextSourceForm
    change_form_template = "admin/context/contextsource/change_form.html"
    list_display = ["name", "agent", "provider_name", "enabled", "required", "credential", "updated_at"]
    list_filter = ["agent", "enabled", "required"]
    list_select_related = ["agent"]
    search_fields = ["name", "agent__name", "provider"]
    readonly_fields = ["credential"]

    def get_fieldsets(self, request: HttpRequest, obj: ContextSource | None = None) -> Any:
        return [
            (None, {"fields": ["agent", "name", "provider", "parameters", "enabled", "required", "position"]}),
            ("Fetching", {"fields": ["timeout_seconds", "max_chars", "cache_ttl_seconds"]}),
            ("Credential", {"fields": ["credential", "credential_env", "secret", "clear_secret"]}),
        ]

    @admin.display(description="provider")
    def provider_name(self, source: ContextSource) -> str:
        return source.provider.rsplit(".", 1)[-1]

    @admin.display(description="credential")
    def credential(self, source: ContextSource) -> str:
        if source.credential_env:
            return f"environment variable {source.credential_env}"
        return "stored, encrypted (never shown)" if source.credential_encrypted else "none"

    def save_model(self, request: HttpRequest, obj: ContextSource, form: Any, change: bool) -> None:
        services.save_source(
            obj,
            actor=Actor.from_request(request, Channel.ADMIN),
            secret=form.cleaned_data["secret"],
            clear_secret=form.cleaned_data["clear_secret"],
        )

    def delete_model(self, request: HttpRequest, obj: ContextSource) -> None:
        services.delete_source(obj, actor=Actor.from_request(request, Channel.ADMIN))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ContextSource]) -> None:
        actor = Actor.from_request(request, Channel.ADMIN)
        for source in queryset:
            services.delete_source(source, actor=actor)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="context_contextsource_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Fetch the source now, as a run would, and show the text it would inject."""
        source = get_object_or_404(ContextSource.objects.select_related("agent"), pk=object_id)
        if not self.has_view_permission(request, source):
            raise PermissionDenied
        try:
            preview, problem = services.preview_source(source), ""
        except InvalidContextSource as exc:
            preview, problem = None, exc.message
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview of {source}",
            "opts": self.model._meta,
            "original": source,
            "preview": preview,
            "problem": problem,
            "change_url": reverse("admin:context_contextsource_change", args=[source.pk]),
        }
        return TemplateResponse(request, "admin/context/contextsource/preview.html", context)


INJECTION_COLUMNS = (
    "position",
    "source",
    "kind",
    "origin",
    "status",
    "required",
    "item_count",
    "items_shown",
    "chars",
    "truncated",
    "fetch_ms",
    "cache_hit",
    "fetched_at",
    "error",
    "tools",
)


class ContextInjectionInline(ReadOnly, admin.TabularInline):
    """On the run's page: what each source gave the run."""

    model = ContextInjection
    extra = 0
    can_delete = False
    verbose_name = "context source"
    verbose_name_plural = "Context injected into this run"
    fields = INJECTION_COLUMNS
    readonly_fields = INJECTION_COLUMNS
