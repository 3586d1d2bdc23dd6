"""The approvals inbox in the admin: pending tool calls first; each with its agent, run and
conversation, its arguments in a JSON editor, and Approve / Approve with edits / Reject.

Decisions go through `approvals.services`, which re-check the right (verified staff with the
`decide` permission) whatever this page shows. The requests themselves are read-only here.
Webhooks live in their own module (`webhook_admin`), registered from here.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from agentplatform.admin_site import LagTolerantChangelist, ReadOnly
from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Channel as AuditChannel
from agentplatform.errors import InvalidInput, PlatformError
from approvals import (
    selectors,
    services,
    webhook_admin,  # noqa: F401  # registers the webhook admin classes
)
from approvals.errors import InvalidArguments
from approvals.models import COMMENT_MAX_CHARS, INBOX_ORDER, ApprovalRequest, ApprovalStatus, Channel

CONVERSATION_LIMIT = 30
PREVIEW_CHARS = 80
DRAFT_KEY = "approvals-draft-{}"  # what an operator typed, kept across a refused decision
REQUEST_FIELDS = [
    "status",
    "tool_name",
    "agent_link",
    "run_link",
    "session_link",
    "requested_by",
    "call_id",
    "requested_at",
    "expires_at",
    "expiry_action",
]
DECISION_FIELDS = ["decided_by", "decided_at", "channel", "comment", "executed_at"]
APPROVED_FIELDS = ["approved_arguments_shown", "changes"]


class ToolFilter(admin.SimpleListFilter):
    """By tool; the choices come from the agents' tools, not from scanning the requests."""

    title = "tool"
    parameter_name = "tool"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(name, name) for name in selectors.tool_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(tool_name=value) if value else queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnly, LagTolerantChangelist):
    # Read-only: requests are opened by runs and changed only by decisions and expiry. Nobody
    # deletes one here, superusers included: it is the audit record of who approved what, and
    # deleting a pending one would leave its run waiting for a decision that cannot come. They
    # go with their run or session.

    list_display = [
        "tool_name",
        "status",
        "agent",
        "arguments_preview",
        "requested_by",
        "requested_at",
        "expires_at",
        "decided_by",
        "channel",
    ]
    list_filter = ["status", "agent", ToolFilter, "channel"]
    search_fields = ["tool_name", "agent__name", "owner__username", "=call_id", "=id", "=run__id", "=session__id"]
    ordering = INBOX_ORDER  # pending first, then newest: one index serves it (approval_inbox_order)
    list_per_page = 50
    show_full_result_count = False  # one COUNT per page, not two
    readonly_fields = [
        *REQUEST_FIELDS,
        "conversation",
        "proposed_arguments",
        *DECISION_FIELDS,
        *APPROVED_FIELDS,
        "reason",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApprovalRequest]:
        return super().get_queryset(request).select_related("agent", "owner", "decided_by")  # no per-row queries

    def get_fieldsets(self, request: HttpRequest, obj: ApprovalRequest | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": REQUEST_FIELDS}),
            ("The conversation that led to the call", {"fields": ["conversation"]}),
            ("Proposed arguments", {"fields": ["proposed_arguments"]}),
        ]
        if obj is not None and obj.decided:
            fields = DECISION_FIELDS + (APPROVED_FIELDS if obj.status == ApprovalStatus.APPROVED else [])
            fields += ["reason"] if obj.status == ApprovalStatus.REJECTED else []
            fieldsets.append(("Decision", {"fields": fields}))
        return fieldsets

    @admin.display(description="arguments")
    def arguments_preview(self, approval: ApprovalRequest) -> str:
        return Truncator(json.dumps(approval.arguments, ensure_ascii=False)).chars(PREVIEW_CHARS)

    @admin.display(description="requested by")
    def requested_by(self, approval: ApprovalRequest) -> str:
        return approval.owner.get_username()

    @admin.display(description="agent")
    def agent_link(self, approval: ApprovalRequest) -> SafeString:
        return _link("admin:agents_agent_change", approval.agent_id, approval.agent.name)

    @admin.display(description="run")
    def run_link(self, approval: ApprovalRequest) -> SafeString:
        return _link("admin:agents_run_change", approval.run_id, str(approval.run_id))

    @admin.display(description="session")
    def session_link(self, approval: ApprovalRequest) -> SafeString:
        return _link("admin:agents_session_change", approval.session_id, str(approval.session_id))

    @admin.display(description="Conversation")
    def conversation(self, approval: ApprovalRequest) -> SafeString:
        rows, total = selectors.conversation(approval, CONVERSATION_LIMIT)
        entries = [
            {"m": row, "calls": [(c["name"], json.dumps(c["arguments"], ensure_ascii=False)) for c in row.tool_calls]}
            for row in rows
        ]
        context = {"entries": entries, "total": total, "shown": len(rows)}
        return SafeString(render_to_string("admin/agents/transcript.html", context))

    @admin.display(description="Arguments")
    def proposed_arguments(self, approval: ApprovalRequest) -> SafeString:
        return _json_block(approval.arguments, "proposed-arguments")

    @admin.display(description="Approved arguments")
    def approved_arguments_shown(self, approval: ApprovalRequest) -> SafeString:
        return _json_block(approval.approved_arguments, "approved-arguments")

    @admin.display(description="Edits")
    def changes(self, approval: ApprovalRequest) -> SafeString | str:
        if not approval.diff:
            return "None: approved as proposed."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            ((c["op"], c["path"], _compact(c["old"]), _compact(c["new"])) for c in approval.diff),
        )
        header = SafeString("<tr><th>op</th><th>path</th><th>old</th><th>new</th></tr>")
        return format_html("<table id='approval-diff'>{}{}</table>", header, rows)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        approval = self.get_object(request, unquote(object_id))
        if approval is not None and approval.status == ApprovalStatus.PENDING:
            extra_context = {**(extra_context or {}), "decision": self._decision_context(request, approval)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _decision_context(self, request: HttpRequest, approval: ApprovalRequest) -> dict[str, Any]:
        draft = request.session.pop(DRAFT_KEY.format(approval.pk), None) or {}
        overdue = approval.expires_at <= timezone.now()
        decider = _decider(request)
        return {
            "overdue": overdue,
            "may_decide": not overdue and services.may_decide(decider, approval),
            "url": reverse("admin:approvals_approvalrequest_decide", args=[approval.pk]),
            "arguments": draft.get("arguments") or json.dumps(approval.arguments, indent=2, ensure_ascii=False),
            "reason": draft.get("reason", ""),
            "comment": draft.get("comment", ""),
            "comment_max": COMMENT_MAX_CHARS,
        }

    def get_urls(self) -> list[URLPattern]:
        decide = path(
            "<path:object_id>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="approvals_approvalrequest_decide",
        )
        return [decide, *super().get_urls()]

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Approve, approve with edits or reject; a refusal changes nothing and says why."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        approval = self.get_object(request, unquote(object_id))
        if approval is None:
            raise Http404("No such approval request.")
        if not self.has_view_permission(request, approval):
            raise PermissionDenied
        try:
            decided = _decide(request, approval)
        except PlatformError as exc:
            request.session[DRAFT_KEY.format(approval.pk)] = {
                "arguments": request.POST.get("arguments", ""),
                "reason": request.POST.get("reason", ""),
                "comment": request.POST.get("comment", ""),
            }
            self.message_user(request, f"Nothing was changed ({exc.status} {exc.code}): {exc.message}", messages.ERROR)
        else:
            self.message_user(request, _outcome(decided), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:approvals_approvalrequest_change", args=[approval.pk]))


def _decider(request: HttpRequest) -> services.Decider:
    return services.Decider(Actor.from_request(request, AuditChannel.ADMIN), Channel.ADMIN, scopes=None)


def _decide(request: HttpRequest, approval: ApprovalRequest) -> ApprovalRequest:
    decider = _decider(request)
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")
    if decision == "approve":
        return services.approve(approval, decider, comment=comment)
    if decision == "approve_edited":
        return services.approve(approval, decider, _edited(request.POST.get("arguments", "")), comment)
    if decision == "reject":
        reason = request.POST.get("reason", "").strip()
        if not reason:
            raise InvalidInput("Rejecting needs a reason (the model reads it).", details={"field": "reason"})
        return services.reject(approval, decider, reason, comment)
    raise InvalidInput(f"Unknown decision {decision!r}.", details={"field": "decision"})


def _edited(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError names the line and column
        raise InvalidArguments(f"arguments: not valid JSON ({exc}).", details={"path": ""}) from None


def _outcome(approval: ApprovalRequest) -> str:
    if approval.status == ApprovalStatus.REJECTED:
        return f"Rejected {approval.tool_name}: the model reads the reason and the run goes on."
    if approval.diff:
        paths = ", ".join(change["path"] for change in approval.diff)
        return f"Approved {approval.tool_name} with edits to {paths}: the run resumes with the edited arguments."
    return f"Approved {approval.tool_name} as proposed: the run resumes."


def _link(url_name: str, pk: Any, text: str) -> SafeString:
    return format_html("<a href='{}'>{}</a>", reverse(url_name, args=[pk]), text)


def _json_block(value: Any, element_id: str) -> SafeString:
    return format_html("<pre id='{}'>{}</pre>", element_id, json.dumps(value, indent=2, ensure_ascii=False))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
