"""Our rows in OpenAI's shapes: an agent as a model, a run as a chat completion (or its chunks)
and as a response."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from agentplatform.errors import NotFound
from agents.models import ACTIVE_RUN_STATUSES, Agent, Run, RunStatus

RESPONSE_PREFIX = "resp_"
COMPLETION_PREFIX = "chatcmpl-"

# A run's status as a response's. A run paused for approvals is a completed response whose
# output ends with `mcp_approval_request` items, as OpenAI's API answers a call to approve.
RESPONSE_STATUS = {
    RunStatus.QUEUED: "queued",
    RunStatus.RUNNING: "in_progress",
    RunStatus.COMPLETED: "completed",
    RunStatus.AWAITING_APPROVAL: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
}


class ResponseNotFound(NotFound):
    code = "response_not_found"
    default_message = "No such response."


def response_id(run_id: UUID) -> str:
    return f"{RESPONSE_PREFIX}{run_id.hex}"


def run_id(response: str) -> UUID:
    """The run a response id names (404 for anything that is not one)."""
    try:
        if not response.startswith(RESPONSE_PREFIX):
            raise ValueError(response)
        return UUID(hex=response.removeprefix(RESPONSE_PREFIX))
    except ValueError:
        raise ResponseNotFound(f"No response {response!r}.", details={"param": "response_id"}) from None


def _timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def model(agent: Agent) -> dict[str, Any]:
    return {"id": agent.name, "object": "model", "created": _timestamp(agent.created_at), "owned_by": "agentplatform"}


def chat_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def chat_completion(run: Run) -> dict[str, Any]:
    """A completed run as a chat completion: its answer, and the tokens it used in all."""
    message: dict[str, Any] = {"role": "assistant", "content": run.output, "refusal": None, "annotations": []}
    return {
        "id": f"{COMPLETION_PREFIX}{run.pk.hex}",
        "object": "chat.completion",
        "created": _timestamp(run.created_at),
        "model": run.agent.name,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": chat_usage(run.input_tokens, run.output_tokens),
        "system_fingerprint": None,
    }


def chunk(run: Run, include_usage: bool, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk` of a streamed run (each has `usage: null` when the last one
    will carry the usage, as OpenAI sends them)."""
    out: dict[str, Any] = {
        "id": f"{COMPLETION_PREFIX}{run.pk.hex}",
        "object": "chat.completion.chunk",
        "created": _timestamp(run.created_at),
        "model": run.agent.name,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }
    if include_usage:
        out["usage"] = None
    return out


def usage_chunk(run: Run, usage: dict[str, int]) -> dict[str, Any]:
    return {**chunk(run, True, {}), "choices": [], "usage": chat_usage(usage["input_tokens"], usage["output_tokens"])}


def response(
    run: Run, output: list[dict[str, Any]], *, previous: UUID | None, background: bool | None = None
) -> dict[str, Any]:
    """A run as a response: its status, its output items so far, and its usage once it has
    stopped (finished, or paused for approvals)."""
    status = RunStatus(run.status)
    stopped = status not in ACTIVE_RUN_STATUSES or status == RunStatus.AWAITING_APPROVAL
    return {
        "id": response_id(run.pk),
        "object": "response",
        "created_at": _timestamp(run.created_at),
        "completed_at": _timestamp(run.finished_at) if status == RunStatus.COMPLETED else None,
        "status": RESPONSE_STATUS[status],
        "background": background,
        "error": _error(run) if status in (RunStatus.FAILED, RunStatus.CANCELLED) else None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": run.metadata,
        "model": run.agent.name,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": response_id(previous) if previous is not None else None,
        "store": True,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": _response_usage(run) if stopped else None,
        "user": None,
    }


def _error(run: Run) -> dict[str, Any]:
    error = run.error or {}
    return {"code": error.get("code", str(run.status)), "message": error.get("message", f"The run {run.status}.")}


def _response_usage(run: Run) -> dict[str, Any]:
    return {
        "input_tokens": run.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": run.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": run.input_tokens + run.output_tokens,
    }


def sse(event: str | None, data: Any) -> str:
    """One Server-Sent Event: named (the Responses stream) or not (chat chunks)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"
