"""API shapes for agents, sessions, runs, messages and schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentplatform.api.base import ModelSerializer, StrictSerializer, TextField
from agents import selectors
from agents.models import (
    Agent,
    IfBusy,
    Message,
    OverlapPolicy,
    Run,
    RunStatus,
    Schedule,
    ScheduleFiring,
    Session,
    SessionStrategy,
)
from approvals import selectors as approval_selectors
from approvals.api.serializers import comment_field

METADATA_MAX_BYTES = 16_384
# DRF's own rendering of a datetime (ISO 8601), in UTC as every API time is (TIME_ZONE): told
# so, it does not convert each value read (already UTC) into the current time zone's UTC.
_DATETIME = serializers.DateTimeField(default_timezone=UTC)


def _metadata(value: Any) -> None:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise serializers.ValidationError(f"Must be at most {METADATA_MAX_BYTES} bytes of JSON.")


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.JSONField):
    """Caller's metadata: a JSON object of at most METADATA_MAX_BYTES."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validators=[_metadata], **kwargs)


class ToolSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    parameters = serializers.JSONField(help_text="JSON schema of the arguments.")
    permission = serializers.ChoiceField(choices=["allow", "confirm", "deny"])


class AgentSerializer(ModelSerializer):
    id = serializers.CharField(source="name", read_only=True)
    model = serializers.CharField(read_only=True)
    demo_model = serializers.SerializerMethodField(help_text="True when the agent runs on the offline demo model.")
    tools = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = ["id", "name", "description", "model", "demo_model", "enabled", "custom_turn", "tools"]

    def get_demo_model(self, agent: Agent) -> bool:
        return agent.model.split(":")[0] == "demo"

    def get_tools(self, agent: Agent) -> list[dict[str, Any]]:
        rows = [row for row in agent.tool_rows.all() if row.registered]
        return [
            {"name": r.name, "description": r.description, "parameters": r.parameters, "permission": r.permission}
            for r in rows
        ]


class RunCreateSerializer(StrictSerializer):
    input = TextField(help_text="The user's message.")
    session_id = serializers.UUIDField(required=False, allow_null=True, help_text="Omit to start a new session.")
    metadata = MetadataField(required=False, default=dict)
    if_busy = serializers.ChoiceField(
        choices=IfBusy.choices,
        default=IfBusy.REJECT,
        help_text="If the session has an active run: reject (409), enqueue (run after it), or interrupt it.",
    )
    background = serializers.BooleanField(default=False, help_text="Answer 202 at once; the run goes on.")
    stream = serializers.BooleanField(default=False, help_text="Answer with the run's events (SSE).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["background"] and attrs["stream"]:
            raise serializers.ValidationError({"stream": ["Choose background or stream, not both."]})
        return attrs


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class MessageSerializer(ModelSerializer):
    run_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "position",
            "role",
            "content",
            "tool_calls",
            "tool_call_id",
            "tool_name",
            "is_error",
            "run_id",
            "created_at",
        ]

    def to_representation(self, instance: Message) -> dict[str, Any]:
        """What ModelSerializer makes of these fields (a test holds the two equal), written
        out: a history page is up to 200 messages, and field by field it cost a read about a
        tenth of its CPU."""
        return {
            "id": instance.id,
            "position": instance.position,
            "role": instance.role,
            "content": instance.content,
            "tool_calls": instance.tool_calls,
            "tool_call_id": instance.tool_call_id,
            "tool_name": instance.tool_name,
            "is_error": instance.is_error,
            "run_id": None if instance.run_id is None else str(instance.run_id),
            "created_at": _DATETIME.to_representation(instance.created_at),
        }


class RunSerializer(ModelSerializer):
    session_id = serializers.UUIDField(read_only=True)
    schedule_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The schedule that started it.")
    agent = serializers.CharField(source="agent.name", read_only=True)
    usage = serializers.SerializerMethodField()
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)
    pending_approvals = serializers.SerializerMethodField(
        help_text="While the run is awaiting_approval: the ids of its pending approval requests."
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "session_id",
            "agent",
            "status",
            "input",
            "output",
            "error",
            "usage",
            "steps",
            "model",
            "metadata",
            "created_at",
            "started_at",
            "finished_at",
            "duration_ms",
            "cancel_requested_at",
            "schedule_id",
            "pending_approvals",
        ]

    def get_pending_approvals(self, run: Run) -> list[str]:
        if run.status != RunStatus.AWAITING_APPROVAL:
            return []
        return approval_selectors.pending_ids(run.session_id)

    def get_usage(self, run: Run) -> dict[str, int]:
        return {
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "total_tokens": run.input_tokens + run.output_tokens,
        }


class RunResultSerializer(RunSerializer):
    messages = MessageSerializer(many=True, read_only=True, help_text="The messages this run added, in order.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "messages"]


class SessionSerializer(ModelSerializer):
    agent = serializers.CharField(source="agent.name", read_only=True)

    class Meta:
        model = Session
        fields = ["id", "agent", "title", "metadata", "message_count", "created_at", "updated_at"]


class SessionCreateSerializer(StrictSerializer):
    agent = TextField(help_text="The agent's id (its name).")
    title = TextField(required=False, allow_blank=True, max_length=200, default="")
    metadata = MetadataField(required=False, default=dict)


class SessionUpdateSerializer(StrictSerializer):
    title = TextField(required=False, allow_blank=True, max_length=200)
    metadata = MetadataField(required=False)


class WsRunSerializer(StrictSerializer):
    """A WebSocket `run` message: input for the socket's session."""

    input = TextField()
    metadata = MetadataField(required=False, default=dict)
    if_busy = serializers.ChoiceField(choices=IfBusy.choices, default=IfBusy.REJECT)
    idempotency_key = serializers.CharField(required=False, max_length=200)


class WsCancelSerializer(StrictSerializer):
    run_id = serializers.UUIDField(required=False, help_text="Omit to cancel the session's active run.")


class WsApproveSerializer(StrictSerializer):
    approval_id = serializers.UUIDField()
    arguments = serializers.DictField(required=False, help_text="Edited arguments; omit to approve as proposed.")
    comment = comment_field()


class WsRejectSerializer(StrictSerializer):
    approval_id = serializers.UUIDField()
    reason = TextField(max_length=2000)
    comment = comment_field()


class WsResumeSerializer(StrictSerializer):
    run_id = serializers.UUIDField()
    seq = serializers.IntegerField(min_value=0)


class ScheduleInputSerializer(StrictSerializer):
    """Creating a schedule; PATCH takes any of the same fields (`partial`)."""

    name = TextField(max_length=200)
    agent = TextField(help_text="The agent's id (its name).")
    input = TextField(help_text="The user message each run gets.")
    cron = TextField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="minute hour day-of-month month day-of-week, e.g. `0 9 * * 1-5`. Or give interval_seconds.",
    )
    timezone = TextField(required=False, max_length=64, default="UTC", help_text="IANA name the cron is read in.")
    interval_seconds = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Instead of cron: every N seconds (at least 10)."
    )
    session_strategy = serializers.ChoiceField(
        choices=SessionStrategy.choices, default=SessionStrategy.NEW, help_text="A new session each time, or one."
    )
    session_id = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="With `fixed`: omit, and the first run starts it."
    )
    overlap = serializers.ChoiceField(
        choices=OverlapPolicy.choices,
        default=OverlapPolicy.SKIP,
        help_text="skip: no run while the schedule's previous run is active; allow: start anyway.",
    )
    enabled = serializers.BooleanField(default=True)
    ends_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="The first firing after it disables the schedule."
    )
    metadata = MetadataField(required=False, default=dict)


class FiringSerializer(ModelSerializer):
    run_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="The run started or, when skipped, the active run found."
    )

    class Meta:
        model = ScheduleFiring
        fields = ["id", "created_at", "outcome", "run_id", "error"]


class ScheduleSerializer(ModelSerializer):
    agent = serializers.CharField(source="agent.name", read_only=True)
    session_id = serializers.UUIDField(read_only=True, allow_null=True)
    next_fire_at = serializers.SerializerMethodField(help_text="When beat next fires it; null when disabled.")
    last_firing = FiringSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "agent",
            "input",
            "metadata",
            "cron",
            "timezone",
            "interval_seconds",
            "session_strategy",
            "session_id",
            "overlap",
            "enabled",
            "ends_at",
            "next_fire_at",
            "last_firing",
            "created_at",
            "updated_at",
        ]

    def get_next_fire_at(self, schedule: Schedule) -> datetime | None:
        return selectors.next_fire_at(schedule)
