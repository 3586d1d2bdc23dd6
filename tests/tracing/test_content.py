"""Prompts, tool arguments and results reach spans only when configured, redacted and cut."""

from __future__ import annotations

import json

import pytest

from agentplatform.sdk import attributes as attr
from agentplatform.sdk import telemetry
from tests.fakes.llm_server import Call, Text, ToolCalls

SECRET = "sk-live-ABCDEFGHIJKLMNOPQRSTUV"


@pytest.fixture
def recording(monkeypatch):
    monkeypatch.setenv(telemetry.CONTENT_VARIABLE, "true")


def test_nothing_is_recorded_unless_configured(monkeypatch):
    monkeypatch.delenv(telemetry.CONTENT_VARIABLE, raising=False)

    assert telemetry.content({"city": "Paris"}) is None


def test_secrets_are_redacted_by_key_and_by_shape(recording):
    value = {
        "city": "Paris",
        "password": "hunter2",
        "headers": {"Authorization": "Bearer abcdefghijkl", "X-Api-Key": "123"},
        "input_tokens": 5,  # not a secret: counts of tokens
        "note": f"use {SECRET} or ap_0123456789abcdefghij, token eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl",
    }

    recorded = json.loads(telemetry.content(value) or "")

    assert recorded["city"] == "Paris"
    assert (
        recorded["password"] == recorded["headers"]["Authorization"] == recorded["headers"]["X-Api-Key"] == "[REDACTED]"
    )
    assert recorded["input_tokens"] == 5
    assert recorded["note"] == "use [REDACTED] or [REDACTED], token [REDACTED]"


def test_long_content_is_cut_to_the_limit(recording, monkeypatch):
    monkeypatch.setenv(telemetry.MAX_CHARS_VARIABLE, "10")

    assert telemetry.content("x" * 25) == "xxxxxxxxxx…[15 more chars]"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_runs_prompts_arguments_and_results_are_recorded_redacted_when_configured(recording, tracing_on, api, llm):
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text(f"5, and your key {SECRET}"))

    status, run = api.post("/api/v1/agents/oai/runs/", {"input": f"2+3? my key is {SECRET}"})
    assert (status, run["status"]) == (201, "completed")
    trace = tracing_on.trace_of(run["id"], {"tool.call", "chat gpt-test"})

    first, second = (s.attributes for s in trace.spans if s.name == "chat gpt-test")
    tool = next(s.attributes for s in trace.spans if s.name == "tool.call")
    assert json.loads(first[attr.GEN_AI_INPUT_MESSAGES]) == [{"role": "user", "content": "2+3? my key is [REDACTED]"}]
    assert first[attr.GEN_AI_SYSTEM_INSTRUCTIONS] == "Be brief."
    assert "[REDACTED]" in second[attr.GEN_AI_OUTPUT_MESSAGES]
    assert json.loads(tool[attr.GEN_AI_TOOL_ARGUMENTS]) == {"a": 2, "b": 3}
    assert tool[attr.GEN_AI_TOOL_RESULT] == "5"
    assert all(SECRET not in json.dumps(span.attributes) for span in trace.spans)
