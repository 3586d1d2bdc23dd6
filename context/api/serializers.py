"""API shapes for context sources and previews. Credentials are described, never shown."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from agentplatform.api.base import ModelSerializer, StrictSerializer
from context.models import ContextSource


class ContextSourceSerializer(ModelSerializer):
    agent = serializers.CharField(source="agent.name", read_only=True)
    credential = serializers.SerializerMethodField(
        help_text='{"kind": "env", "env": NAME}, {"kind": "stored"} (encrypted, never shown) or null.'
    )

    class Meta:
        model = ContextSource
        fields = [
            "id",
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
            "credential",
            "created_at",
            "updated_at",
        ]

    def get_credential(self, source: ContextSource) -> dict[str, Any] | None:
        if source.credential_env:
            return {"kind": "env", "env": source.credential_env}
        return {"kind": "stored"} if source.credential_encrypted else None


class PreviewRequestSerializer(StrictSerializer):
    """No options yet: an empty body (or `{}`); unknown fields are refused."""


class PreviewSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The source's name, as the prompt labels it.")
    kind = serializers.CharField(help_text="The provider's type: slack, mcp, http, ...")
    rendered = serializers.CharField(help_text="Exactly the text a run would be given by this source.")
    item_count = serializers.IntegerField()
    items_shown = serializers.IntegerField(help_text="Items within the budget.")
    chars = serializers.IntegerField()
    truncated = serializers.BooleanField()
    fetch_ms = serializers.IntegerField()
    fetched_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="Why the fetch failed; empty when it worked.")
    tools = serializers.ListField(child=serializers.CharField(), help_text="Tools the source would offer.")
