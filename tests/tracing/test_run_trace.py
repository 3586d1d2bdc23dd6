"""A real run (HTTP request, Celery worker, model calls through the real SDKs, tool calls)
lands in ClickHouse as one trace, with its parent/child links and GenAI attributes."""

from __future__ import annotations

import pytest

from agentplatform.sdk import attributes as attr
from agents.models import Run
from tests.fakes.llm_server import Call, Text, ToolCalls
from tracing.selectors import Span

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TASK = "celery.task agents.execute_run"


def _one(spans: list[Span], name: str) -> Span:
    [found] = [span for span in spans if span.name == name]
    return found


PROVIDERS = {"oai": ("openai", "gpt-test"), "claude": ("anthropic", "claude-test")}


@pytest.mark.parametrize("agent", PROVIDERS)
def test_a_run_is_one_trace_from_the_request_through_the_queue_to_its_model_and_tool_calls(tracing_on, api, llm, agent):
    provider, model = PROVIDERS[agent]
    # Given a model that calls a tool, then answers
    llm.enqueue(
        ToolCalls([Call("get_weather", {"city": "Paris"})], input_tokens=20, output_tokens=7),
        Text("It is sunny in Paris.", input_tokens=30, output_tokens=6),
    )

    # When the client runs the agent over HTTP (a Celery worker executes it)
    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "Weather in Paris?"})
    assert (status, run["status"]) == (201, "completed")
    chat = f"chat {model}"
    trace = tracing_on.trace_of(run["id"], {"agent.run", chat, "tool.call", "queue.wait", TASK})

    # Then one trace holds the request, the queue wait, the task, the run, its model and tool calls
    spans = trace.spans
    [request] = [span for span in spans if span.kind == "server"]
    task, wait, agent_run, tool = (_one(spans, name) for name in (TASK, "queue.wait", "agent.run", "tool.call"))
    model_calls = [span for span in spans if span.name == chat]
    assert (request.parent_span_id, request.depth) == ("", 0)
    assert request.attributes["http.method"] == "POST"
    assert task.parent_span_id == request.span_id
    assert wait.parent_span_id == task.span_id
    assert agent_run.parent_span_id == task.span_id
    assert [m.parent_span_id for m in model_calls] == [agent_run.span_id] * 2
    assert tool.parent_span_id == agent_run.span_id
    assert model_calls[0].start_ns < tool.start_ns < model_calls[1].start_ns
    assert wait.start_ns <= wait.end_ns <= agent_run.start_ns
    assert {span.trace_id for span in spans} == {trace.summary.trace_id}
    # the run's identity, on the run and every span inside it
    owner_id = Run.objects.get(pk=run["id"]).owner_id
    for span in (agent_run, tool, *model_calls):
        assert span.attributes[attr.RUN_ID] == run["id"]
        assert span.attributes[attr.SESSION_ID] == run["session_id"]
        assert span.attributes[attr.AGENT_NAME] == agent
        assert span.attributes[attr.OWNER_ID] == str(owner_id)
    assert agent_run.attributes[attr.RUN_STATUS] == "completed"
    assert agent_run.attributes[attr.RUN_INPUT_TOKENS] == 50
    # GenAI semantic conventions on the model calls
    first, second = (m.attributes for m in model_calls)
    assert first[attr.GEN_AI_OPERATION] == "chat"
    assert first[attr.GEN_AI_PROVIDER] == first[attr.GEN_AI_SYSTEM] == provider
    assert first[attr.GEN_AI_REQUEST_MODEL] == model
    assert (first[attr.GEN_AI_INPUT_TOKENS], first[attr.GEN_AI_OUTPUT_TOKENS]) == (20, 7)
    assert (second[attr.GEN_AI_INPUT_TOKENS], second[attr.GEN_AI_OUTPUT_TOKENS]) == (30, 6)
    assert first[attr.GEN_AI_FINISH_REASONS] == (["tool_calls"] if provider == "openai" else ["tool_use"])
    assert second[attr.GEN_AI_FINISH_REASONS] == (["stop"] if provider == "openai" else ["end_turn"])
    assert attr.GEN_AI_INPUT_MESSAGES not in first  # content is not recorded unless configured
    # the tool call through the gate
    assert tool.attributes[attr.GEN_AI_TOOL_NAME] == "get_weather"
    assert tool.attributes[attr.TOOL_PERMISSION] == "allow"
    assert tool.attributes[attr.TOOL_OUTCOME] == "ok"
    assert attr.GEN_AI_TOOL_ARGUMENTS not in tool.attributes
    # and the trace's summary
    assert trace.summary.agents == [agent]
    assert trace.summary.runs == [run["id"]]
    assert trace.summary.statuses == ["completed"]
    assert (trace.summary.input_tokens, trace.summary.output_tokens) == (50, 13)
    assert trace.summary.root_name == request.name


def test_a_runs_context_fetches_are_spans_inside_it(tracing_on, api, llm):
    llm.enqueue(Text("5 business days."))

    status, run = api.post("/api/v1/agents/ctx/runs/", {"input": "How long do refunds take?"})
    assert (status, run["status"]) == (201, "completed")
    trace = tracing_on.trace_of(run["id"], {"agent.run", "context.fetch", "chat gpt-test"})

    agent_run, fetch = _one(trace.spans, "agent.run"), _one(trace.spans, "context.fetch")
    assert fetch.parent_span_id == agent_run.span_id
    assert fetch.attributes[attr.CONTEXT_PROVIDER] == "static"
    assert fetch.attributes[attr.CONTEXT_SOURCE] == "handbook"
    assert (fetch.attributes[attr.CONTEXT_ITEMS], fetch.attributes[attr.CONTEXT_CACHE_HIT]) == (1, False)
    assert fetch.attributes[attr.RUN_ID] == run["id"]
    assert attr.CONTEXT_CONTENT not in fetch.attributes
