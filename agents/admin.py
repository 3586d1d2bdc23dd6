"""The control plane for agents, sessions, runs and API keys."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agents import services
from agents.models import Agent, ApiKey, Message, Run, RunEvent, Session, Tool

TRANSCRIPT_LIMIT = 200


class ToolInline(admin.TabularInline):
    model = Tool
    extra = 0
    can_delete = False
    fields = ["name", "description", "code_permission", "permission_override", "registered"]
    readonly_fields = ["name", "description", "code_permission", "registered"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "effective_model", "enabled", "registered", "custom_turn", "updated_at"]
    list_filter = ["enabled", "registered"]
    search_fields = ["name", "description"]
    inlines = [ToolInline]
    readonly_fields = ["name", "description", "code_model", "code_instructions", "custom_turn", "registered"]
    fieldsets = [
        (None, {"fields": ["name", "description", "registered", "custom_turn"]}),
        ("From code", {"fields": ["code_model", "code_instructions"]}),
        ("Operator overrides", {"fields": ["enabled", "model_override", "instructions_override"]}),
    ]

    @admin.display(description="model")
    def effective_model(self, agent: Agent) -> str:
        if agent.model.split(":")[0] == "demo":
            return f"{agent.model} (offline demo model, no LLM)"
        return agent.model

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents come from code


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "agent", "owner", "message_count", "created_at", "updated_at"]
    list_filter = ["agent"]
    search_fields = ["id", "title", "owner__username"]
    list_select_related = ["agent", "owner"]
    readonly_fields = ["id", "owner", "agent", "message_count", "created_at", "updated_at", "transcript"]
    fields = ["id", "title", "owner", "agent", "metadata", "message_count", "created_at", "updated_at", "transcript"]

    @admin.display(description="Transcript")
    def transcript(self, session: Session) -> SafeString:
        total = session.message_count
        rows = list(Message.objects.filter(session=session).order_by("-position")[:TRANSCRIPT_LIMIT])
        rows.reverse()
        entries = [
            {"m": row, "calls": [(c["name"], json.dumps(c["arguments"], ensure_ascii=False)) for c in row.tool_calls]}
            for row in rows
        ]
        return SafeString(
            render_to_string("admin/agents/transcript.html", {"entries": entries, "total": total, "shown": len(rows)})
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "agent", "status", "owner", "steps", "input_tokens", "output_tokens", "created_at"]
    list_filter = ["status", "agent"]
    search_fields = ["id", "session__id", "owner__username"]
    list_select_related = ["agent", "owner"]
    readonly_fields = [field.name for field in Run._meta.fields] + ["duration_ms", "event_log"]

    @admin.display(description="Events")
    def event_log(self, run: Run) -> SafeString:
        rows = RunEvent.objects.filter(run=run).order_by("seq")
        return format_html_join(
            "\n",
            "<div><code>#{} {}</code> <span class='help'>{}</span> {}</div>",
            ((e.seq, e.type, e.created_at.strftime("%H:%M:%S.%f")[:-3], json.dumps(e.data)[:300]) for e in rows),
        ) or SafeString("<p>No events.</p>")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "status", "created_at", "expires_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    filter_horizontal = ["agents"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ["user", "name", "agents", "scopes", "expires_at"]
        return ["prefix", "user", "name", "agents", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["prefix", "user", "created_at", "revoked_at", "last_used_at"]

    @admin.display(description="status")
    def status(self, api_key: ApiKey) -> str:
        return "revoked" if api_key.revoked_at else "active"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, key = services.create_api_key(
            user=obj.user, name=obj.name, scopes=obj.scopes or [], expires_at=obj.expires_at
        )
        obj.pk, obj.prefix, obj.created_at = api_key.pk, api_key.prefix, api_key.created_at
        obj._state.adding = False
        messages.warning(
            request,
            format_html("New API key (shown once, copy it now): <code id='new-api-key'>{}</code>", key),
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = services.revoke_api_keys(queryset)
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)
