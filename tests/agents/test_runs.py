"""Runs end to end through the real `openai` and `anthropic` SDKs against the fake server."""

from __future__ import annotations

import pytest

from agents.models import Message, Run
from tests import sample_agents as test_agents
from tests.fakes.llm_server import Call, Delay, Error, Text, ToolCalls

PROVIDERS = ["oai", "claude"]


def _last_tool_results(request_body: dict, protocol: str) -> list[str]:
    """The tool results a provider request carried, as text."""
    if protocol == "openai":
        return [m["content"] for m in request_body["messages"] if m["role"] == "tool"]
    blocks = [b for m in request_body["messages"] if m["role"] == "user" for b in m["content"] if isinstance(b, dict)]
    return [b["content"] for b in blocks if b.get("type") == "tool_result"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent", PROVIDERS)
def test_a_run_calls_a_tool_and_answers(api, llm, agent):
    # Given a model that asks for the weather, then answers
    llm.enqueue(
        ToolCalls([Call("get_weather", {"city": "Paris"})], input_tokens=20, output_tokens=7),
        Text("It is sunny in Paris.", input_tokens=30, output_tokens=6),
    )

    # When the client runs the agent
    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "Weather in Paris?"})

    # Then the finished run comes back with its messages, in order, and the usage
    assert status == 201, run
    assert run["status"] == "completed"
    assert run["output"] == "It is sunny in Paris."
    assert run["usage"] == {"input_tokens": 50, "output_tokens": 13, "total_tokens": 63}
    assert run["steps"] == 2
    roles = [(m["role"], m["position"]) for m in run["messages"]]
    assert roles == [("user", 0), ("assistant", 1), ("tool", 2), ("assistant", 3)]
    call = run["messages"][1]["tool_calls"][0]
    assert call["name"] == "get_weather"
    assert call["arguments"] == {"city": "Paris"}
    assert run["messages"][2]["content"] == "sunny in Paris, 21 celsius"
    assert run["messages"][2]["tool_call_id"] == call["id"]
    assert test_agents.CALLS == [("get_weather", {"city": "Paris", "unit": "celsius"})]
    # and the provider was sent the instructions, the tools and the tool's result
    first, second = llm.requests
    assert first.headers["authorization"] == f"Bearer test-{first.protocol}-key"
    offered = first.body["tools"]
    names = [t["function"]["name"] if first.protocol == "openai" else t["name"] for t in offered]
    assert "get_weather" in names
    assert "delete_everything" not in names  # DENY tools are never offered
    assert _last_tool_results(second.body, second.protocol) == ["sunny in Paris, 21 celsius"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent", PROVIDERS)
def test_parallel_tool_calls_and_an_async_tool(api, llm, agent):
    llm.enqueue(
        ToolCalls([Call("add", {"a": 2, "b": 3}), Call("fetch_async", {"key": "k"})]),
        Text("5 and K"),
    )

    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "go"})

    assert status == 201
    assert run["status"] == "completed"
    results = [m["content"] for m in run["messages"] if m["role"] == "tool"]
    assert results == ["5", '{"key": "k", "value": "K"}']


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (Call("add", {"a": "two", "b": 3}), "Error: invalid arguments for add: a: Input should be a valid integer"),
        (Call("add", {"a": 1}), "Error: invalid arguments for add: b: Field required"),
        (Call("add", '{"a": 1, "b": '), "Error: arguments must be a JSON object"),
        (Call("explode", {"reason": "x"}), "Error: RuntimeError: boom: x"),
        (Call("slow", {}), "Error: tool 'slow' timed out after 0.2s."),
        (Call("no_such_tool", {}), "Error: unknown tool 'no_such_tool'."),
        (Call("delete_everything", {}), "Refused: tool 'delete_everything' is not permitted for this agent."),
    ],
    ids=["wrong-type", "missing", "malformed-json", "raises", "timeout", "unknown", "denied"],
)
def test_a_failed_tool_call_is_reported_to_the_model_and_the_run_goes_on(api, llm, call, expected):
    llm.enqueue(ToolCalls([call]), Text("sorry"))

    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "try"})

    assert status == 201
    assert run["status"] == "completed"
    tool_message = run["messages"][2]
    assert tool_message["is_error"] is True
    assert tool_message["content"].startswith(expected)
    assert _last_tool_results(llm.requests[1].body, "openai")[0].startswith(expected)
    assert [name for name, _ in test_agents.CALLS] == (["explode"] if call.name == "explode" else []) + (
        ["slow"] if call.name == "slow" else []
    )


@pytest.mark.django_db(transaction=True)
def test_the_loop_stops_at_max_steps(api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "MAX_STEPS": 2}
    llm.enqueue(ToolCalls([Call("add", {"a": 1, "b": 1})]), ToolCalls([Call("add", {"a": 1, "b": 2})]))

    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "loop"})

    assert status == 201
    assert run["status"] == "failed"
    assert run["error"]["code"] == "max_steps_exceeded"
    assert run["steps"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent", PROVIDERS)
def test_provider_rate_limits_are_retried(api, llm, agent):
    llm.enqueue(Error(429, "slow down", headers={"retry-after-ms": "5"}), Error(503, "busy"), Text("finally"))

    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "hi"})

    assert status == 201
    assert run["status"] == "completed"
    assert run["output"] == "finally"
    assert len(llm.requests) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("agent", PROVIDERS)
def test_a_provider_that_keeps_failing_fails_the_run_with_its_message(api, llm, agent):
    llm.enqueue(*[Error(500, "the model is on fire", headers={"retry-after-ms": "1"})] * 3)

    status, run = api.post(f"/api/v1/agents/{agent}/runs/", {"input": "hi"})

    assert status == 201
    assert run["status"] == "failed"
    assert run["error"]["code"] == "provider_error"
    assert "the model is on fire" in run["error"]["message"]
    assert run["error"]["details"]["status"] == 500
    assert Run.objects.get(pk=run["id"]).finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_provider_timeout_fails_the_run(api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "MODEL_TIMEOUT": 0.2, "MODEL_MAX_RETRIES": 0}
    llm.enqueue(Delay(1.0, Text("late")))

    status, run = api.post("/api/v1/agents/oai/runs/", {"input": "hi"})

    assert status == 201
    assert run["status"] == "failed"
    assert run["error"]["code"] == "provider_error"
    assert "timed out" in run["error"]["message"].lower()


@pytest.mark.django_db(transaction=True)
def test_a_session_continues_with_its_history(api, llm):
    llm.enqueue(Text("Hello Ada."), Text("Your name is Ada."))
    _, first = api.post("/api/v1/agents/oai/runs/", {"input": "I am Ada."})

    status, second = api.post("/api/v1/agents/oai/runs/", {"input": "Who am I?", "session_id": first["session_id"]})

    assert status == 201
    assert second["session_id"] == first["session_id"]
    assert [m["position"] for m in second["messages"]] == [2, 3]
    sent = [(m["role"], m["content"]) for m in llm.requests[1].body["messages"]]
    assert sent == [("system", "Be brief."), ("user", "I am Ada."), ("assistant", "Hello Ada."), ("user", "Who am I?")]


@pytest.mark.django_db(transaction=True)
def test_history_sent_to_the_model_is_bounded(api, llm, settings):
    settings.AGENTPLATFORM = {**settings.AGENTPLATFORM, "HISTORY_LIMIT": 2}
    llm.enqueue(Text("one"), Text("two"), Text("three"))
    _, run = api.post("/api/v1/agents/oai/runs/", {"input": "a"})
    api.post("/api/v1/agents/oai/runs/", {"input": "b", "session_id": run["session_id"]})

    api.post("/api/v1/agents/oai/runs/", {"input": "c", "session_id": run["session_id"]})

    sent = [(m["role"], m["content"]) for m in llm.requests[2].body["messages"]]
    assert sent == [("system", "Be brief."), ("user", "b"), ("assistant", "two"), ("user", "c")]
    assert Message.objects.filter(session_id=run["session_id"]).count() == 6


@pytest.mark.django_db(transaction=True)
def test_an_agent_with_its_own_turn_goes_through_the_tool_gate(api, llm):
    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "2+40"})

    assert status == 201
    assert run["status"] == "completed"
    assert run["output"] == "42 (and tool_denied)"
    assert run["usage"]["total_tokens"] == 4
    kinds = [(m["role"], m["tool_name"] or [c["name"] for c in m["tool_calls"]]) for m in run["messages"]]
    assert kinds == [
        ("user", []),
        ("assistant", ["add"]),
        ("tool", "add"),
        ("assistant", ["delete_everything"]),
        ("tool", "delete_everything"),
        ("assistant", []),
    ]
    assert test_agents.CALLS == [("add", {"a": 2, "b": 40})]


@pytest.mark.django_db(transaction=True)
def test_an_agent_whose_code_raises_fails_the_run_with_the_error(api, llm):
    status, run = api.post("/api/v1/agents/calc/runs/", {"input": "not a sum"})

    assert status == 201
    assert run["status"] == "failed"
    assert run["error"]["code"] == "agent_error"
    assert "ValueError" in run["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_the_demo_agent_runs_offline_with_a_tool_call(api, llm):
    status, run = api.post("/api/v1/agents/demo/runs/", {"input": "What's the weather in Paris?"})

    assert status == 201
    assert run["status"] == "completed"
    assert run["messages"][1]["tool_calls"][0]["arguments"] == {"city": "Paris"}
    assert "Paris" in run["output"]
    assert "demo model" in run["output"]
    assert llm.requests == []
