"""The examples in examples/ run end to end against the fake provider server, without Django.

Each example's `run(input, ctx)` is driven through the real SDK (anthropic, or the wrapped
framework over the openai SDK) pointed at `FakeLLMServer` by environment variables. A small
fake RunContext stands in for the platform's: it records every `call_tool` and applies the
tool's permission as the platform does (DENY refused, CONFIRM raises ApprovalRequired).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agentplatform import Agent, ApprovalRequired, ChatMessage, ToolCall, ToolCallError, ToolPermission
from agentplatform.sdk.tools import ToolArgumentsError
from tests.fakes.llm_server import Call, FakeLLMServer, RecordedRequest, Text, ToolCalls

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """Import examples/NAME.py (examples/ is not a package)."""
    module_name = f"agentplatform_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeContext:
    """A stand-in for the platform's RunContext (implements `agentplatform.RunContext`)."""

    agent: Agent
    prior: list[ChatMessage] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    run_id: str = "run-1"
    session_id: str = "session-1"
    agent_name: str = "example"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def history(self) -> list[ChatMessage]:
        return list(self.prior)

    def add_usage(self, input_tokens: int = 0, output_tokens: int = 0) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens

    def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        self.calls.append((name, dict(arguments)))
        tool = self.agent.tools.get(name)
        if tool is None or name in self.denied or tool.permission is ToolPermission.DENY:
            raise ToolCallError(name, f"Refused: tool {name!r} is not permitted for this agent.", code="tool_denied")
        try:
            valid = tool.validate(dict(arguments))
        except ToolArgumentsError as exc:
            raise ToolCallError(name, f"Error: {exc}", code="invalid_arguments") from exc
        if tool.permission is ToolPermission.CONFIRM:
            raise ApprovalRequired(name, dict(arguments))
        try:
            return tool.invoke(valid)
        except Exception as exc:
            raise ToolCallError(name, f"Error: {type(exc).__name__}: {exc}", code="tool_error") from exc


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """A fake provider server that both SDKs reach through their environment variables."""
    with FakeLLMServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")
        monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")
        yield server
        assert server.pending() == 0, "the test scripted replies that were never requested"


# --- examples/anthropic_direct.py -----------------------------------------------------------


@pytest.fixture
def anthropic_example() -> ModuleType:
    return load_example("anthropic_direct")


def _tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool_result blocks of the request's last (user) message."""
    last = request.body["messages"][-1]
    assert last["role"] == "user"
    return [block for block in last["content"] if block["type"] == "tool_result"]


def test_anthropic_runs_a_tool_and_answers(fake_llm: FakeLLMServer, anthropic_example: ModuleType) -> None:
    agent = anthropic_example.agent
    fake_llm.enqueue(
        ToolCalls([Call("convert_length", {"value": 5, "from_unit": "km", "to_unit": "mi"}, id="toolu_01a")]),
        Text("5 km is about 3.107 miles.", input_tokens=30, output_tokens=8),
    )
    ctx = FakeContext(agent)

    answer = agent.run("How many miles is 5 km?", ctx)

    assert answer == "5 km is about 3.107 miles."
    assert ctx.calls == [("convert_length", {"value": 5, "from_unit": "km", "to_unit": "mi"})]
    assert (ctx.input_tokens, ctx.output_tokens) == (40, 13)
    first, second = fake_llm.requests
    assert first.protocol == second.protocol == "anthropic"
    assert first.body["system"] == agent.instructions
    assert first.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "How many miles is 5 km?"}]}
    ]
    offered = {t["name"]: t for t in first.body["tools"]}
    assert set(offered) == {"convert_length", "book_meeting_room"}
    assert offered["convert_length"]["input_schema"] == agent.tools["convert_length"].parameters
    assert second.body["messages"][-2]["content"][0]["type"] == "tool_use"
    assert _tool_results(second) == [{"type": "tool_result", "tool_use_id": "toolu_01a", "content": "5 km = 3.107 mi"}]


def test_anthropic_sends_tool_errors_back_as_is_error(fake_llm: FakeLLMServer, anthropic_example: ModuleType) -> None:
    agent = anthropic_example.agent
    fake_llm.enqueue(
        ToolCalls(
            [
                Call("convert_length", {"value": 1, "from_unit": "parsec", "to_unit": "m"}, id="toolu_bad"),
                Call("book_meeting_room", {"room": "Blue", "time": "now"}, id="toolu_denied"),
            ]
        ),
        Text("Sorry, I cannot convert that."),
    )
    ctx = FakeContext(agent, denied={"book_meeting_room"})  # as an operator's DENY would

    assert agent.run("Convert 1 parsec to metres", ctx) == "Sorry, I cannot convert that."

    bad, denied = _tool_results(fake_llm.requests[1])
    assert bad["tool_use_id"] == "toolu_bad"
    assert bad["is_error"] is True
    assert "invalid arguments for convert_length: from_unit" in bad["content"]  # the schema's enum
    assert denied["tool_use_id"] == "toolu_denied"
    assert denied["is_error"] is True
    assert denied["content"].startswith("Refused:")
    assert [name for name, _ in ctx.calls] == ["convert_length", "book_meeting_room"]


def test_anthropic_confirm_tool_stops_the_run(fake_llm: FakeLLMServer, anthropic_example: ModuleType) -> None:
    agent = anthropic_example.agent
    fake_llm.enqueue(ToolCalls([Call("book_meeting_room", {"room": "Blue", "time": "tomorrow 10:00"})]))
    ctx = FakeContext(agent)

    with pytest.raises(ApprovalRequired) as raised:
        agent.run("Book the Blue room for tomorrow 10:00", ctx)

    assert raised.value.tool == "book_meeting_room"
    assert ctx.calls == [("book_meeting_room", {"room": "Blue", "time": "tomorrow 10:00"})]
    assert len(fake_llm.requests) == 1  # the model was not called again
    assert (ctx.input_tokens, ctx.output_tokens) == (10, 5)  # the tokens spent before the pause count


def test_anthropic_replays_history_as_alternating_turns(fake_llm: FakeLLMServer, anthropic_example: ModuleType) -> None:
    agent = anthropic_example.agent
    fake_llm.enqueue(Text("About 16,404 ft."))
    call = ToolCall("call_1", "convert_length", {"value": 5, "from_unit": "km", "to_unit": "mi"})
    ctx = FakeContext(
        agent,
        prior=[
            ChatMessage("user", "5 km in miles?"),
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("tool", "5 km = 3.107 mi", tool_call_id="call_1", name="convert_length"),
            ChatMessage("assistant", "About 3.1 miles."),
        ],
    )

    assert agent.run("And in feet?", ctx) == "About 16,404 ft."

    assert fake_llm.requests[0].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "5 km in miles?"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "call_1", "name": "convert_length", "input": call.arguments}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "5 km = 3.107 mi", "is_error": False}
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "About 3.1 miles."}]},
        {"role": "user", "content": [{"type": "text", "text": "And in feet?"}]},
    ]
    assert ctx.calls == []


def test_anthropic_gives_up_after_max_steps(
    fake_llm: FakeLLMServer, anthropic_example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = anthropic_example.agent
    monkeypatch.setattr(agent, "max_steps", 2)
    loop = ToolCalls([Call("convert_length", {"value": 1, "from_unit": "m", "to_unit": "ft"})])
    fake_llm.enqueue(loop, loop)

    with pytest.raises(RuntimeError, match="no final answer after 2 model calls"):
        agent.run("Keep converting", FakeContext(agent))


# --- examples/framework_wrapper.py (Pydantic AI) --------------------------------------------


@pytest.fixture
def framework_example() -> ModuleType:
    pytest.importorskip("pydantic_ai", reason="pydantic_ai is not installed: pip install -r examples/requirements.txt")
    return load_example("framework_wrapper")


def _tool_messages(request: RecordedRequest) -> list[dict[str, Any]]:
    return [message for message in request.body["messages"] if message["role"] == "tool"]


def test_framework_runs_tools_through_ctx(fake_llm: FakeLLMServer, framework_example: ModuleType) -> None:
    agent = framework_example.agent
    fake_llm.enqueue(
        ToolCalls([Call("lookup_order", {"order_id": "A-1001"}, id="call_lookup")]),
        Text("Order A-1001 has shipped.", input_tokens=30, output_tokens=8),
    )
    ctx = FakeContext(agent)

    answer = agent.run("Where is my order A-1001?", ctx)

    assert answer == "Order A-1001 has shipped."
    assert ctx.calls == [("lookup_order", {"order_id": "A-1001"})]
    assert (ctx.input_tokens, ctx.output_tokens) == (40, 13)
    first, second = fake_llm.requests
    assert first.protocol == second.protocol == "openai"
    offered = {t["function"]["name"]: t["function"] for t in first.body["tools"]}
    assert set(offered) == {"lookup_order", "refund_order"}
    assert offered["lookup_order"]["parameters"]["properties"] == agent.tools["lookup_order"].parameters["properties"]
    assert first.body["messages"][0] == {"role": "system", "content": agent.instructions}
    (result,) = _tool_messages(second)
    assert result["tool_call_id"] == "call_lookup"
    assert json.loads(result["content"]) == {"order_id": "A-1001", "status": "shipped", "total": 42.5}


def test_framework_reports_tool_errors_to_the_model(fake_llm: FakeLLMServer, framework_example: ModuleType) -> None:
    agent = framework_example.agent
    fake_llm.enqueue(
        ToolCalls([Call("lookup_order", {"order_id": "Z-9"}, id="call_missing")]),
        Text("I could not find order Z-9."),
    )
    ctx = FakeContext(agent)

    assert agent.run("Where is order Z-9?", ctx) == "I could not find order Z-9."

    assert ctx.calls == [("lookup_order", {"order_id": "Z-9"})]
    (result,) = _tool_messages(fake_llm.requests[1])
    assert result["tool_call_id"] == "call_missing"
    assert "KeyError" in result["content"]
    assert "Z-9" in result["content"]


def test_framework_confirm_tool_stops_the_run(fake_llm: FakeLLMServer, framework_example: ModuleType) -> None:
    agent = framework_example.agent
    fake_llm.enqueue(ToolCalls([Call("refund_order", {"order_id": "A-1001", "amount": 10})]))
    ctx = FakeContext(agent)

    with pytest.raises(ApprovalRequired) as raised:  # not wrapped, not swallowed by the framework
        agent.run("Refund 10 on A-1001", ctx)

    assert raised.value.tool == "refund_order"
    assert ctx.calls == [("refund_order", {"order_id": "A-1001", "amount": 10})]
    assert len(fake_llm.requests) == 1
    assert (ctx.input_tokens, ctx.output_tokens) == (10, 5)


def test_framework_replays_history(fake_llm: FakeLLMServer, framework_example: ModuleType) -> None:
    agent = framework_example.agent
    fake_llm.enqueue(Text("It was 19.99."))
    call = ToolCall("call_1", "lookup_order", {"order_id": "A-1002"})
    ctx = FakeContext(
        agent,
        prior=[
            ChatMessage("user", "Status of A-1002?"),
            ChatMessage("assistant", tool_calls=(call,)),
            ChatMessage("tool", '{"status": "processing"}', tool_call_id="call_1", name="lookup_order"),
            ChatMessage("assistant", "It is processing."),
        ],
    )

    assert agent.run("And its total?", ctx) == "It was 19.99."

    messages = fake_llm.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert messages[2]["tool_calls"][0]["id"] == "call_1"
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"order_id": "A-1002"}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "processing"}'}
    assert messages[4]["content"] == "It is processing."
    assert messages[5]["content"] == "And its total?"


def test_framework_stops_at_max_steps(
    fake_llm: FakeLLMServer, framework_example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pydantic_ai

    agent = framework_example.agent
    monkeypatch.setattr(agent, "max_steps", 1)
    fake_llm.enqueue(ToolCalls([Call("lookup_order", {"order_id": "A-1001"})]))

    with pytest.raises(pydantic_ai.UsageLimitExceeded):
        agent.run("Keep looking", FakeContext(agent))

    assert len(fake_llm.requests) == 1
