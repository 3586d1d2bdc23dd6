"""Model serializers build their fields from the model once per class, and stay independent."""

from __future__ import annotations

from unittest import mock

from rest_framework import serializers

from agentplatform.api.base import ModelSerializer
from agents.api.serializers import MessageSerializer, RunResultSerializer, RunSerializer
from agents.models import Message


def test_the_model_is_inspected_once_per_class():
    class Shape(ModelSerializer):
        class Meta:
            model = Message
            fields = ["id", "position", "role", "content"]

    original = serializers.ModelSerializer.build_field
    with mock.patch.object(serializers.ModelSerializer, "build_field", autospec=True, side_effect=original) as build:
        first = Shape().fields
        built = build.call_count
        second = Shape().fields

    assert built == 4
    assert build.call_count == built  # the second instance copied the first build
    assert list(first) == list(second) == ["id", "position", "role", "content"]
    assert first["content"] is not second["content"]  # each instance binds its own fields
    assert first["content"].parent is not second["content"].parent


def test_a_subclass_builds_its_own_fields():
    assert "messages" not in RunSerializer().fields
    assert "messages" in RunResultSerializer().fields
    assert "messages" not in RunSerializer().fields
    assert list(MessageSerializer().fields)[:2] == ["id", "position"]
