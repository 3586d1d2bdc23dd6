"""Our rows in MCP's shapes: an agent as a tool, a run as a tool's result."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from agentplatform.errors import PlatformError, RateLimited, Unavailable
from agents.models import Agent, Run, RunStatus

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "input": {"type": "string", "description": "The message for the agent."},
        "session_id": {
            "type": "string",
            "description": "A session_id an earlier call returned: continue that conversation. Omit to start one.",
        },
    },
    "required": ["input"],
    "additionalProperties": False,
}

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": [RunStatus.COMPLETED, RunStatus.AWAITING_APPROVAL]},
        "answer": {"type": "string"},
        "session_id": {"type": "string"},
        "run_id": {"type": "string"},
        "approval_ids": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["status", "session_id", "run_id"],
}


def tool(agent: Agent) -> types.Tool:
    description = agent.description or agent.instructions or f"The agent {agent.name}."
    return types.Tool(
        name=agent.name,
        description=description,
        input_schema=INPUT_SCHEMA,
        output_schema=OUTPUT_SCHEMA,
    )


def _text(*lines: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=line) for line in lines]


def _continue(run: Run) -> str:
    return f"session_id: {run.session_id} (pass it to continue this conversation)"


def answered(run: Run) -> types.CallToolResult:
    structured = {"status": run.status, "answer": run.output, "session_id": str(run.session_id), "run_id": str(run.pk)}
    return types.CallToolResult(content=_text(run.output, _continue(run)), structured_content=structured)


def paused(run: Run, approval_ids: list[str]) -> types.CallToolResult:
    """A run waiting for a reviewer: not an error, and it says which approvals it waits for."""
    ids = ", ".join(approval_ids)
    text = (
        f"The agent paused for approval: a reviewer must decide approval request(s) {ids}"
        " (in the admin, or POST /api/v1/approvals/{id}/approve or /reject). The run then goes on;"
        f" its answer will be at GET /api/v1/runs/{run.pk}/."
    )
    structured = {
        "status": run.status,
        "session_id": str(run.session_id),
        "run_id": str(run.pk),
        "approval_ids": approval_ids,
    }
    return types.CallToolResult(content=_text(text, _continue(run)), structured_content=structured)


def failed(run: Run) -> types.CallToolResult:
    error = run.error or {}
    code = str(error.get("code") or run.status)
    message = f"The run {run.status} ({code}): {error.get('message') or 'no answer'}"
    return _error(code, message, {"run_id": str(run.pk), "session_id": str(run.session_id)})


def unfinished(run: Run, waited: float) -> types.CallToolResult:
    message = (
        f"The run is still {run.status} after {waited:g} seconds; it goes on."
        f" Its answer will be at GET /api/v1/runs/{run.pk}/."
    )
    return _error("run_in_progress", message, {"run_id": str(run.pk), "session_id": str(run.session_id)})


def refused(exc: PlatformError) -> types.CallToolResult:
    """A platform error (session not found or busy, rate limited, overloaded, ...) as a tool error."""
    message = exc.message
    details: dict[str, Any] = dict(exc.details) if isinstance(exc.details, dict) else {}
    retry_after = _retry_after(exc)
    if retry_after is not None:
        message = f"{message} Retry after {retry_after} seconds."
        details["retry_after"] = retry_after
    return _error(exc.code, message, details)


def _retry_after(exc: PlatformError) -> int | None:
    if isinstance(exc, Unavailable):
        return exc.retry_after
    if isinstance(exc, RateLimited) and exc.headers.get("Retry-After", "").isdigit():
        return int(exc.headers["Retry-After"])
    return None


def _error(code: str, message: str, details: dict[str, Any]) -> types.CallToolResult:
    error = {"code": code, "message": message, "details": details}
    return types.CallToolResult(content=_text(f"{code}: {message}"), structured_content={"error": error}, is_error=True)
