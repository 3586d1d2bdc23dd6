"""Model serializers build their fields from the model once per class, and stay independent."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework import serializers

from agentplatform.api.base import ModelSerializer
from agents.api.serializers import MessageSerializer, RunResultSerializer, RunSerializer
from agents.models import Message, Run, Session
from tests.factories import agent_row, create_user


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


@pytest.mark.django_db
def test_a_message_renders_exactly_as_the_generic_model_serializer_would():
    class Generic(ModelSerializer):  # DRF's rendering, field by field
        run_id = serializers.UUIDField(read_only=True, allow_null=True)

        class Meta:
            model = Message
            fields = MessageSerializer.Meta.fields

    owner = create_user()
    session = Session.objects.create(owner=owner, agent=agent_row("calc"))
    run = Run.objects.create(owner=owner, session=session, agent=session.agent, input="2+2?")
    Message.objects.bulk_create(
        [
            Message(session=session, run=run, position=0, role="user", content="2+2?"),
            Message(
                session=session,
                run=run,
                position=1,
                role="assistant",
                tool_calls=[{"id": "c1", "name": "add", "arguments": {"a": 2, "b": 2}}],
            ),
            Message(session=session, position=2, role="tool", tool_call_id="c1", tool_name="add", is_error=True),
        ]
    )

    for message in Message.objects.filter(session=session):  # as read back from the database
        assert MessageSerializer(message).data == Generic(message).data
    assert Generic(Message.objects.get(position=2)).data["run_id"] is None
