"""`GET /api/v1/audit/`: the audit log, for staff keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView, Cursor, ErrorSerializer, ModelSerializer
from agentplatform.audit import selectors
from agentplatform.audit.errors import StaffOnly
from agentplatform.audit.models import Action, AuditEntry, Channel, TargetType
from agentplatform.errors import InvalidInput

MAX_PARAM_CHARS = 64


class AuditEntrySerializer(ModelSerializer):
    actor = serializers.CharField(source="actor_name", help_text="The user's name at the time; empty: nobody.")
    actor_id = serializers.IntegerField(allow_null=True, help_text="The user's id.")
    channel = serializers.ChoiceField(choices=Channel.choices)
    action = serializers.ChoiceField(choices=Action.choices)
    target_type = serializers.ChoiceField(choices=TargetType.choices)
    before = serializers.JSONField(allow_null=True, help_text="The changed fields before (secrets redacted).")
    after = serializers.JSONField(allow_null=True, help_text="The changed fields after (secrets redacted).")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_id",
            "api_key_id",
            "api_key_prefix",
            "channel",
            "action",
            "target_type",
            "target_id",
            "target_label",
            "ip",
            "user_agent",
            "request_id",
            "before",
            "after",
        ]
        read_only_fields = fields


class AuditCursor(Cursor):
    ordering = ("-created_at", "-id")


class AuditListView(CallerAPIView):
    pagination_class = AuditCursor

    @extend_schema(
        parameters=[
            OpenApiParameter("action", str, enum=Action.values, description="Only this action"),
            OpenApiParameter("target_type", str, enum=TargetType.values, description="Only this kind of target"),
            OpenApiParameter("target_id", str, description="Only this target (with target_type)"),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this time (ISO 8601; UTC if no zone)"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Before this time (ISO 8601)"),
        ],
        responses={200: AuditEntrySerializer(many=True), 400: ErrorSerializer, 403: ErrorSerializer},
        summary="The audit log (staff keys only), newest first",
        description="Every change operators and API keys made to the control plane, and admin sign-ins: "
        "who, what, when, from where, and the changed fields before and after. A key of a user who is "
        "not staff gets 403 `audit_forbidden`.",
    )
    def get(self, request: Request) -> Response:
        if not self.owner.is_staff:
            raise StaffOnly()
        params = request.query_params
        rows = selectors.entries(
            action=_choice(params, "action", Action.values),
            target_type=_choice(params, "target_type", TargetType.values),
            target_id=_text(params, "target_id"),
            since=_moment(params, "since"),
            until=_moment(params, "until"),
        )
        return self.page(rows, AuditEntrySerializer)


def _choice(params: Mapping[str, str], name: str, values: list[str]) -> str:
    value = params.get(name, "")
    if value and value not in values:
        raise InvalidInput(f"{name} must be one of {', '.join(values)}.", details={"param": name})
    return value


def _text(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if len(value) > MAX_PARAM_CHARS:
        raise InvalidInput(f"{name}: at most {MAX_PARAM_CHARS} characters.", details={"param": name})
    return value


def _moment(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one that UTC cannot hold (year 1, east of UTC)
        raise InvalidInput(
            f"{name}: expected an ISO 8601 date or time, e.g. 2026-01-31T09:00:00Z.", details={"param": name}
        ) from None
