"""API shapes for approval requests and decisions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentplatform.api.base import ModelSerializer, StrictSerializer, TextField
from approvals.models import COMMENT_MAX_CHARS, ApprovalRequest, Channel


class ApprovalSerializer(ModelSerializer):
    run_id = serializers.UUIDField(read_only=True)
    session_id = serializers.UUIDField(read_only=True)
    agent = serializers.CharField(source="agent.name", read_only=True)
    tool = serializers.CharField(source="tool_name", read_only=True)
    decided_by = serializers.SerializerMethodField()
    channel = serializers.ChoiceField(
        choices=Channel.choices, allow_blank=True, read_only=True, help_text="How it was decided; empty until then."
    )

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "run_id",
            "session_id",
            "agent",
            "tool",
            "call_id",
            "arguments",
            "status",
            "requested_at",
            "expires_at",
            "expiry_action",
            "approved_arguments",
            "diff",
            "reason",
            "comment",
            "decided_by",
            "decided_at",
            "channel",
            "executed_at",
        ]
        read_only_fields = fields

    def get_decided_by(self, request: ApprovalRequest) -> str | None:
        return request.decided_by.get_username() if request.decided_by else None


@extend_schema_field({"type": "object", "additionalProperties": True})
class ArgumentsField(serializers.JSONField):
    pass


def comment_field() -> TextField:
    return TextField(
        required=False,
        allow_blank=True,
        max_length=COMMENT_MAX_CHARS,
        default="",
        help_text="The reviewer's note on the decision, kept and sent in webhooks (the model does not read it).",
    )


class ApproveSerializer(StrictSerializer):
    arguments = ArgumentsField(
        required=False, help_text="Edited arguments (validated against the tool's schema). Omit to approve as proposed."
    )
    comment = comment_field()

    def validate_arguments(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class RejectSerializer(StrictSerializer):
    reason = TextField(max_length=2000, help_text="Why; the model reads it as the tool's result.")
    comment = comment_field()
