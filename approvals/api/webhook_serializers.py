"""API shapes for webhook endpoints, deliveries and attempts. A secret is shown once, at creation."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from agentplatform.api.base import ModelSerializer, StrictSerializer, TextField
from approvals.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

SECRET_MIN_CHARS = 16


class WebhookInputSerializer(StrictSerializer):
    """Creating an endpoint; PATCH takes any of the same fields (`partial`)."""

    url = TextField(max_length=2000, help_text="http(s) URL; private, loopback and link-local addresses are refused.")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, help_text="The events to receive."
    )
    description = TextField(required=False, allow_blank=True, max_length=200, default="")
    enabled = serializers.BooleanField(default=True)
    secret = TextField(
        required=False,
        min_length=SECRET_MIN_CHARS,
        max_length=200,
        write_only=True,
        help_text="The signing secret; omit it and one is generated (and shown once).",
    )


class WebhookSerializer(ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "event_types", "enabled", "all_owners", "created_at", "updated_at"]
        read_only_fields = fields


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.SerializerMethodField(help_text="Shown only in this response: store it now.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return str(self.context["secret"])


class WebhookAttemptSerializer(ModelSerializer):
    succeeded = serializers.BooleanField(read_only=True)

    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "trigger",
            "started_at",
            "status_code",
            "latency_ms",
            "succeeded",
            "error",
            "response_excerpt",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(ModelSerializer):
    endpoint_id = serializers.UUIDField(read_only=True)
    payload = serializers.SerializerMethodField(help_text="The JSON body POSTed (and signed) on every attempt.")
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint_id",
            "event_id",
            "event_type",
            "status",
            "attempt_count",
            "next_attempt_at",
            "delivered_at",
            "created_at",
            "payload",
            "attempts",
        ]
        read_only_fields = fields

    def get_payload(self, delivery: WebhookDelivery) -> Any:
        return json.loads(delivery.payload)
