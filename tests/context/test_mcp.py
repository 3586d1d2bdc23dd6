"""MCP against a real MCP server process (the official SDK), over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from agentplatform import MCPContext, ToolPermission, fetch_context
from agentplatform.sdk.tools import ToolArgumentsError
from tests.context.conftest import MCP_TOKEN, ROOT, mcp_stdio_command, mcp_stdio_env


def _stdio(**options) -> MCPContext:
    return MCPContext(command=mcp_stdio_command(), env=mcp_stdio_env(), cwd=str(ROOT), timeout=60, **options)


@pytest.fixture(params=["stdio", "http"])
def server(request, mcp_http_url, mcp_calls):
    """A factory of sources for one transport."""
    if request.param == "stdio":
        return _stdio
    return lambda **options: MCPContext(url=mcp_http_url, token=MCP_TOKEN, timeout=60, **options)


def test_resources_and_prompts_become_items_and_tools_are_discovered(server):
    source = server(prompts={"triage": {"area": "billing"}})

    result = fetch_context([source]).results[0]

    assert result.ok, result.error
    assert [(i.title, i.url) for i in result.items] == [
        ("today", "notes://today"),
        ("policy", "notes://policy"),
        ("prompt triage", ""),
    ]
    assert result.items[0].text == "Standup at 10:00. The billing migration is frozen until Friday."
    assert result.items[2].text == "user: Triage billing tickets by customer impact first."
    assert [t.name for t in result.tools] == ["add", "delete_record", "fail"]
    assert result.tools[0].parameters["required"] == ["a", "b"]
    assert '<context source="mcp:' in result.rendered.text


def test_a_chosen_resource_list_reads_only_those(server):
    result = fetch_context([server(resources=["notes://policy"], tools=False)]).results[0]

    assert [i.text for i in result.items] == ["Refunds above 100 EUR need a manager."]
    assert result.tools == ()


def test_server_tools_become_agent_tools_confirm_by_default_and_call_the_server(server, mcp_calls, request):
    source = server(tool_permissions={"add": "allow"}, tool_prefix="notes_")
    definitions = fetch_context([source]).results[0].tools

    tools = {t.name: t for t in source.build_tools(definitions)}

    assert tools["notes_add"].permission is ToolPermission.ALLOW
    assert tools["notes_delete_record"].permission is ToolPermission.CONFIRM
    assert tools["notes_add"].parameters["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}
    arguments = tools["notes_add"].validate({"a": 2, "b": 3})
    assert asyncio.run(tools["notes_add"].func(**arguments)) == "5"
    with pytest.raises(ToolArgumentsError, match="invalid arguments for notes_add: a: 'two' is not of type 'integer'"):
        tools["notes_add"].validate({"a": "two", "b": 3})
    with pytest.raises(Exception, match="refused: no"):
        asyncio.run(tools["notes_fail"].func(reason="no"))
    if request.node.callspec.params["server"] == "stdio":  # each call's server process wrote to this file
        calls = [json.loads(line) for line in mcp_calls.read_text().splitlines()]
        assert calls == [
            {"tool": "add", "arguments": {"a": 2, "b": 3}},
            {"tool": "fail", "arguments": {"reason": "no"}},
        ]


def test_the_http_server_refuses_a_wrong_token_and_the_source_fails_without_echoing_it(mcp_http_url):
    source = MCPContext(url=mcp_http_url, token="not-the-token-77", timeout=30)

    result = fetch_context([source]).results[0]

    assert result.error_code == "error"
    assert result.error.startswith("MCP server:")
    assert "not-the-token-77" not in result.error


def test_a_command_that_does_not_exist_fails_the_source():
    result = fetch_context([MCPContext(command=["/nonexistent/mcp-server"], timeout=30)]).results[0]

    assert result.error_code == "error"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "command"),
        ({"command": ["x"], "url": "http://x/mcp"}, "one of them"),
        ({"command": "python server.py"}, "list of strings"),
        ({"url": "ftp://x"}, "http"),
        ({"command": ["x"], "tool_permission": "maybe"}, "maybe"),
    ],
)
def test_mcp_options_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MCPContext(**kwargs)
