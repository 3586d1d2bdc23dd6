"""An MCP server bound to an agent: its tools join the run under the permission gate."""

from __future__ import annotations

import json

import pytest

from agents.models import Run, Tool
from context.models import ContextInjection
from tests.conftest import Api
from tests.context.conftest import ROOT, mcp_stdio_command, mcp_stdio_env
from tests.context.factories import bind_source
from tests.factories import create_api_key
from tests.fakes.llm_server import Call, Text, ToolCalls
from tests.infra import wait_until


@pytest.fixture(autouse=True)
def _python_may_serve_mcp(settings):
    """Stdio MCP servers bound in the admin may run only the programs an operator lists."""
    settings.AGENTPLATFORM_CONTEXT = {**settings.AGENTPLATFORM_CONTEXT, "MCP_COMMANDS": [mcp_stdio_command()[0]]}


def _bind_mcp(**parameters):
    base = {"command": mcp_stdio_command(), "env": mcp_stdio_env(), "cwd": str(ROOT), "tool_prefix": "notes_"}
    return bind_source(name="notes", provider="MCPContext", parameters={**base, **parameters}, timeout_seconds=60)


def _executed(calls_file) -> list[dict]:
    return [json.loads(line) for line in calls_file.read_text().splitlines()]


def _offered(request) -> list[str]:
    return [tool["function"]["name"] for tool in request.body.get("tools", [])]


@pytest.mark.django_db(transaction=True)
def test_an_mcp_tool_is_confirm_by_default_and_runs_on_the_server_once_approved(api, alice, llm, mcp_calls):
    _bind_mcp()
    llm.enqueue(ToolCalls([Call("notes_delete_record", {"record_id": "r-1"})]))

    status, run = api.post("/api/v1/agents/ctx/runs/", {"input": "delete r-1"})

    assert (status, run["status"]) == (202, "awaiting_approval")
    assert _executed(mcp_calls) == []  # the server has not seen the call
    assert {"notes_add", "notes_delete_record", "notes_fail", "add"} <= set(_offered(llm.requests[0]))
    assert "Standup at 10:00." in next(m["content"] for m in llm.requests[0].body["messages"] if m["role"] == "system")
    rows = dict(
        Tool.objects.filter(agent__name="ctx", name__startswith="notes_").values_list("name", "code_permission")
    )
    assert rows == {"notes_add": "confirm", "notes_delete_record": "confirm", "notes_fail": "confirm"}
    injection = ContextInjection.objects.get(run_id=run["id"], source="notes")
    assert injection.tools == ["notes_add", "notes_delete_record", "notes_fail"]

    [approval] = run["pending_approvals"]
    reviewer = Api(create_api_key(alice, scopes=["approvals:decide"])[1])
    llm.enqueue(Text("Deleted."))
    assert reviewer.post(f"/api/v1/approvals/{approval}/approve", {})[0] == 200
    wait_until(lambda: Run.objects.get(pk=run["id"]).status == "completed", timeout=60)
    assert _executed(mcp_calls) == [{"tool": "delete_record", "arguments": {"record_id": "r-1"}}]


@pytest.mark.django_db(transaction=True)
def test_an_allowed_mcp_tool_runs_on_the_server_and_the_model_reads_its_result(api, llm, mcp_calls):
    _bind_mcp(tool_permissions={"add": "allow"})
    llm.enqueue(ToolCalls([Call("notes_add", {"a": 2, "b": 3})]), Text("5"))

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "2+3"})

    assert run["status"] == "completed"
    assert run["messages"][2]["content"] == "5"
    assert _executed(mcp_calls) == [{"tool": "add", "arguments": {"a": 2, "b": 3}}]


@pytest.mark.django_db(transaction=True)
def test_an_operator_override_applies_to_mcp_tools(api, llm, mcp_calls):
    _bind_mcp()
    llm.enqueue(ToolCalls([Call("notes_delete_record", {"record_id": "r-1"})]))
    api.post("/api/v1/agents/ctx/runs/", {"input": "first run: discovers the tools"})
    Tool.objects.filter(agent__name="ctx", name="notes_delete_record").update(permission_override="allow")
    Tool.objects.filter(agent__name="ctx", name="notes_fail").update(permission_override="deny")
    llm.enqueue(ToolCalls([Call("notes_delete_record", {"record_id": "r-2"})]), Text("done"))

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "delete r-2"})

    assert run["status"] == "completed"
    assert _executed(mcp_calls) == [{"tool": "delete_record", "arguments": {"record_id": "r-2"}}]
    assert "notes_fail" not in _offered(llm.requests[1])  # DENY tools are not offered


@pytest.mark.django_db(transaction=True)
def test_an_mcp_tool_error_and_bad_arguments_go_back_to_the_model(api, llm, mcp_calls):
    _bind_mcp(tool_permission="allow")
    llm.enqueue(
        ToolCalls([Call("notes_fail", {"reason": "nope"}), Call("notes_add", {"a": "two", "b": 1})]),
        Text("sorry"),
    )

    _, run = api.post("/api/v1/agents/ctx/runs/", {"input": "try"})

    assert run["status"] == "completed"
    results = [(m["content"], m["is_error"]) for m in run["messages"] if m["role"] == "tool"]
    assert results[0] == ("Error: MCPToolError: Error executing tool fail: refused: nope", True)
    assert results[1][0].startswith("Error: invalid arguments for notes_add: a: 'two' is not of type 'integer'")
    assert _executed(mcp_calls) == [{"tool": "fail", "arguments": {"reason": "nope"}}]
