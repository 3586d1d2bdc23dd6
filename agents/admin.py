"""The control plane for agents, sessions, runs, API keys and schedules."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms.models import construct_instance
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agentplatform.admin_site import LagTolerantChangelist
from agentplatform.audit.actors import Actor
from agentplatform.audit.admin import AuditedAdmin
from agentplatform.audit.models import Channel, TargetType
from agentplatform.errors import PlatformError
from agents import selectors, services
from agents.models import (
    Agent,
    ApiKey,
    Message,
    OwnerLimits,
    Run,
    RunEvent,
    Schedule,
    ScheduleFiring,
    Session,
    Tool,
)
from agents.services import limits
from agents.services.keys import AUDITED_FIELDS as KEY_FIELDS
from context.admin import ContextInjectionInline
from tracing import links

TRANSCRIPT_LIMIT = 200
FIRINGS_SHOWN = 50
# What the audit log records of operators' edits on these pages.
AGENT_FIELDS = ("enabled", "model_override", "instructions_override", "approval_timeout", "approval_expiry_action")
TOOL_FIELDS = ("permission_override", "conditions", "approval_timeout", "approval_expiry_action")


class ToolForm(forms.ModelForm):
    """A tool's permission, argument conditions and approval expiry; `Tool.clean()` validates
    the conditions against the tool's schema, and its error shows on the field."""

    class Meta:
        model = Tool
        fields = ["permission_override", "conditions", "approval_timeout", "approval_expiry_action"]
        widgets = {"conditions": forms.Textarea(attrs={"rows": 3, "cols": 48, "spellcheck": "false"})}

    def clean_conditions(self) -> Any:
        conditions = self.cleaned_data["conditions"]
        return [] if conditions is None else conditions  # an emptied box: no conditions


class ToolInline(admin.TabularInline):
    model = Tool
    form = ToolForm
    extra = 0
    can_delete = False
    fields = [
        "name",
        "description",
        "code_permission",
        "permission_override",
        "conditions",
        "approval_timeout",
        "approval_expiry_action",
        "registered",
    ]
    readonly_fields = ["name", "description", "code_permission", "registered"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(AuditedAdmin):
    audit_target = TargetType.AGENT
    audit_fields = AGENT_FIELDS
    audit_inlines = {Tool: (TargetType.TOOL, TOOL_FIELDS)}
    list_display = ["name", "effective_model", "enabled", "registered", "custom_turn", "updated_at"]
    list_filter = ["enabled", "registered"]
    search_fields = ["name", "description"]
    inlines = [ToolInline]
    readonly_fields = ["name", "description", "code_model", "code_instructions", "custom_turn", "registered"]
    fieldsets = [
        (None, {"fields": ["name", "description", "registered", "custom_turn"]}),
        ("From code", {"fields": ["code_model", "code_instructions"]}),
        ("Operator overrides", {"fields": ["enabled", "model_override", "instructions_override"]}),
        (
            "Approvals",
            {
                "fields": ["approval_timeout", "approval_expiry_action"],
                "description": "For CONFIRM calls of this agent's tools; a tool's own setting (below) wins.",
            },
        ),
    ]

    @admin.display(description="model")
    def effective_model(self, agent: Agent) -> str:
        if agent.model.split(":")[0] == "demo":
            return f"{agent.model} (offline demo model, no LLM)"
        return agent.model

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents come from code


@admin.register(Session)
class SessionAdmin(LagTolerantChangelist):
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
class RunAdmin(LagTolerantChangelist):
    list_display = ["id", "agent", "status", "owner", "steps", "input_tokens", "output_tokens", "created_at"]
    list_filter = ["status", "agent"]
    search_fields = ["id", "session__id", "owner__username"]
    list_select_related = ["agent", "owner"]
    readonly_fields = [field.name for field in Run._meta.fields] + ["duration_ms", "traces", "event_log"]
    inlines = [ContextInjectionInline]

    @admin.display(description="Traces")
    def traces(self, run: Run) -> SafeString:
        return format_html("<a href='{}' id='run-traces'>Open this run's trace</a>", links.run_traces_url(run.pk))

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


LIMIT_FIELDS = ["requests_per_minute", "runs_per_minute", "concurrent_runs", "tokens_per_day"]


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    audit_target = TargetType.API_KEY
    audit_fields = KEY_FIELDS
    list_display = ["prefix", "name", "user", "status", "created_at", "expires_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    filter_horizontal = ["agents"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        if obj is None:
            return ["user", "name", "agents", "scopes", "expires_at"]
        return [
            "prefix",
            "user",
            "name",
            "agents",
            "scopes",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            *LIMIT_FIELDS,
            "current_use",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["prefix", "user", "created_at", "revoked_at", "last_used_at", "current_use"]

    @admin.display(description="current use")
    def current_use(self, api_key: ApiKey) -> str:
        use = limits.current_use(api_key)
        if use is None:
            return "unknown (Redis cannot be reached)"
        caps = limits.limits_for(api_key)
        if not caps.limits_runs:  # Redis counts no runs for a key without run limits: its runs say.
            use = dataclasses.replace(limits.use_from_database(api_key), requests_this_minute=use.requests_this_minute)
        return _use_shown(use, caps)

    @admin.display(description="status")
    def status(self, api_key: ApiKey) -> str:
        return "revoked" if api_key.revoked_at else "active"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, key = services.create_api_key(
            user=obj.user,
            actor=Actor.from_request(request, Channel.ADMIN),
            name=obj.name,
            agents=form.cleaned_data.get("agents", []),
            scopes=obj.scopes or [],
            expires_at=obj.expires_at,
        )
        obj.pk, obj.prefix, obj.created_at = api_key.pk, api_key.prefix, api_key.created_at
        obj._state.adding = False
        messages.warning(
            request,
            format_html("New API key (shown once, copy it now): <code id='new-api-key'>{}</code>", key),
        )

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = services.revoke_api_keys(queryset, actor=Actor.from_request(request, Channel.ADMIN))
        self.message_user(request, f"{count} key(s) revoked.", messages.SUCCESS)


@admin.register(OwnerLimits)
class OwnerLimitsAdmin(AuditedAdmin):
    """A user's limits over all of their keys together, and their current use."""

    audit_target = TargetType.USER
    audit_fields = ("user", *LIMIT_FIELDS)
    audit_additions = True
    list_display = ["user", *LIMIT_FIELDS]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]

    def get_fields(self, request: HttpRequest, obj: OwnerLimits | None = None) -> Any:
        return ["user", *LIMIT_FIELDS] if obj is None else ["user", *LIMIT_FIELDS, "current_use"]

    def get_readonly_fields(self, request: HttpRequest, obj: OwnerLimits | None = None) -> list[str]:
        return [] if obj is None else ["user", "current_use"]

    @admin.display(description="current use (all of the owner's keys)")
    def current_use(self, row: OwnerLimits) -> str:
        use = limits.current_owner_use(row.user_id)
        if use is None:
            return "unknown (Redis cannot be reached)"
        caps = limits.owner_limits_for(row.user)
        if not caps.limits_runs:  # Redis counts no runs for an owner without run limits: their runs say.
            use = dataclasses.replace(
                limits.use_from_database(owner=row.user), requests_this_minute=use.requests_this_minute
            )
        return _use_shown(use, caps)


def _use_shown(use: limits.CurrentUse, caps: limits.Limits) -> str:
    def of(value: int, cap: int) -> str:
        return f"{value} of {cap}" if cap else f"{value} (unlimited)"

    requests = of(use.requests_this_minute, caps.requests_per_minute) if caps.requests_per_minute else None
    return (
        f"requests this minute: {requests or 'not counted (unlimited)'}; "
        f"runs in flight: {of(use.runs_in_flight, caps.concurrent_runs)}; "
        f"tokens today (UTC): {of(use.tokens_today, caps.tokens_per_day)}"
    )


class ScheduleForm(forms.ModelForm):
    """The service's checks run with the form's, so a bad cron or time zone is a form error."""

    class Meta:
        model = Schedule
        fields = [
            "name",
            "owner",
            "agent",
            "input",
            "metadata",
            "cron",
            "timezone",
            "interval_seconds",
            "ends_at",
            "enabled",
            "session_strategy",
            "session",
            "overlap",
        ]

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.errors:
            return data
        try:
            services.check_schedule(construct_instance(self, self.instance))
        except PlatformError as exc:
            field = (exc.details or {}).get("field", "input")  # input_too_large names no field
            self.add_error("session" if field == "session_id" else field, exc.message)
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ["name", "agent", "owner", "when", "enabled", "last_fired", "last_outcome", "next_firing"]
    list_filter = ["enabled", "agent"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["agent", "owner", "last_firing", "periodic_task__interval", "periodic_task__crontab"]
    raw_id_fields = ["owner", "session"]
    readonly_fields = ["api_key", "next_firing", "firings", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "owner", "api_key", "agent", "input", "metadata"]}),
        ("When", {"fields": ["cron", "timezone", "interval_seconds", "ends_at", "enabled", "next_firing"]}),
        ("Runs", {"fields": ["session_strategy", "session", "overlap"]}),
        ("History", {"fields": ["firings", "created_at", "updated_at"]}),
    ]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="last fired", ordering="last_firing__created_at")
    def last_fired(self, schedule: Schedule) -> datetime | None:
        return schedule.last_firing.created_at if schedule.last_firing else None

    @admin.display(description="last outcome")
    def last_outcome(self, schedule: Schedule) -> str:
        firing = schedule.last_firing
        if firing is None:
            return ""
        return f"{firing.outcome} ({firing.error['code']})" if firing.error else firing.outcome

    @admin.display(description="next firing")
    def next_firing(self, schedule: Schedule) -> datetime | None:
        return selectors.next_fire_at(schedule)

    @admin.display(description="Recent firings")
    def firings(self, schedule: Schedule) -> SafeString:
        rows = ScheduleFiring.objects.filter(schedule=schedule)[:FIRINGS_SHOWN]
        return format_html_join(
            "\n",
            "<div><code>{}</code> <b>{}</b> {} <span class='help'>{}</span></div>",
            (
                (
                    f.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    f.outcome,
                    _run_link(f.run_id),
                    (f.error or {}).get("message", ""),
                )
                for f in rows
            ),
        ) or SafeString("<p>Not fired yet.</p>")

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        services.save_schedule(obj, actor=Actor.from_request(request, Channel.ADMIN))

    def delete_model(self, request: HttpRequest, obj: Schedule) -> None:
        services.delete_schedule(obj, actor=Actor.from_request(request, Channel.ADMIN))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        actor = Actor.from_request(request, Channel.ADMIN)
        for schedule in queryset:
            services.delete_schedule(schedule, actor=actor)


def _run_link(run_id: Any) -> SafeString:
    if run_id is None:
        return SafeString("")
    return format_html("<a href='{}'>run {}</a>", reverse("admin:agents_run_change", args=[run_id]), run_id)


# The trace viewer links each span's run to its admin page.
links.register_run_url(lambda run_id: reverse("admin:agents_run_change", args=[run_id]))
