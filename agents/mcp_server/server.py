"""The MCP server: `tools/list` lists the agents the caller's key may use, `tools/call` runs one
through the platform's services and answers once the run has finished or paused.

The caller's API key was checked before any MCP message was read (see `app`); the handlers
find it in the HTTP request's scope, with the request's admission, which they release once
their sync work is done (as Django's handler does before a wait). Database work runs on the
web pool, and waiting for a run on the event loop, holding no thread, as the wait-mode API
does.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from agentplatform.conf import platform_settings
from agentplatform.errors import PlatformError
from agentplatform.handlers import ADMISSION, Admission
from agentplatform.pools import web_pool
from agents import selectors, services
from agents.errors import AgentNotFound, SessionNotFound
from agents.mcp_server import shapes
from agents.models import ApiKey, Run, RunStatus
from approvals import selectors as approval_selectors
from approvals.models import ApprovalStatus

API_KEY = "agentplatform.api_key"  # in the ASGI scope: the caller's key, once authenticated


def build() -> Server[Any]:
    return Server(
        "agentplatform",
        instructions="Each tool is an agent: call it with `input`, and with the `session_id` it returned to go on.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=lambda name: shapes.INPUT_SCHEMA,  # every tool takes the same arguments
    )


def _admitted(ctx: ServerRequestContext[Any]) -> None:
    """The request's sync work is done: it no longer counts against the web tier's limit."""
    admission = ctx.request.scope.get(ADMISSION) if ctx.request is not None else None
    if isinstance(admission, Admission):
        admission.release()


def _api_key(ctx: ServerRequestContext[Any]) -> ApiKey:
    request = ctx.request
    api_key = request.scope.get(API_KEY) if request is not None else None
    if not isinstance(api_key, ApiKey):  # the app authenticates every request before it gets here
        raise MCPError(code=types.INVALID_REQUEST, message="Not authenticated.")
    return api_key


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    try:
        tools = await web_pool().run(_tools, _api_key(ctx))
    finally:
        _admitted(ctx)
    return types.ListToolsResult(tools=tools)


def _tools(api_key: ApiKey) -> list[types.Tool]:
    return [shapes.tool(agent) for agent in selectors.visible_agents(api_key).order_by("name")]


async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
    api_key = _api_key(ctx)
    text, session_id = _arguments(params.arguments or {})
    try:
        run = await web_pool().run(_start, api_key, params.name, text, session_id)
    except AgentNotFound:  # an unknown tool is a protocol error, as MCP says
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}") from None
    except PlatformError as exc:  # refused (session not found or busy, rate limited, ...): nothing was written
        return shapes.refused(exc)
    finally:
        _admitted(ctx)
    timeout = platform_settings().RUN_WAIT_SECONDS
    await services.await_run(run, timeout)
    return await web_pool().run(_result, run, timeout)


def _arguments(arguments: dict[str, Any]) -> tuple[str, str | None]:
    text = arguments.get("input")
    if not isinstance(text, str):
        raise MCPError(code=types.INVALID_PARAMS, message="`input` is required: the message for the agent (a string).")
    session_id = arguments.get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise MCPError(code=types.INVALID_PARAMS, message="`session_id` is a string: one an earlier call returned.")
    return text, session_id or None


def _start(api_key: ApiKey, name: str, text: str, session_id: str | None) -> Run:
    return services.start_run(
        owner=api_key.user, api_key=api_key, agent_name=name, input=text, session_id=_session(session_id)
    )


def _session(session_id: str | None) -> UUID | None:
    """The session to continue; an id that cannot name one is not found, as another owner's is."""
    if session_id is None:
        return None
    try:
        return UUID(session_id)
    except ValueError:
        raise SessionNotFound(f"No session {session_id}.") from None


def _result(run: Run, waited: float) -> types.CallToolResult:
    fresh = selectors.get_run(run.owner, run.pk)
    if fresh.status == RunStatus.COMPLETED:
        return shapes.answered(fresh)
    if fresh.status == RunStatus.AWAITING_APPROVAL:
        pending = [str(r.pk) for r in approval_selectors.run_requests(fresh.pk) if r.status == ApprovalStatus.PENDING]
        return shapes.paused(fresh, pending)
    if fresh.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        return shapes.failed(fresh)
    return shapes.unfinished(fresh, waited)
