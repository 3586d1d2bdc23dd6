"""Our rows in LangGraph's shapes, and LangGraph's request bodies in ours."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from agentplatform.errors import InvalidInput
from agents.models import Agent, IfBusy, Message, Run, RunStatus, Session
from approvals.models import ApprovalRequest

# assistant_id = uuid5(ASSISTANTS, agent name): stable across processes and restarts.
ASSISTANTS = uuid.UUID("6d1f0c3e-9a51-4a43-8f0c-1f3b6c2a4e10")

RUN_STATUS = {
    RunStatus.QUEUED: "pending",
    RunStatus.RUNNING: "running",
    RunStatus.COMPLETED: "success",
    RunStatus.FAILED: "error",
    RunStatus.AWAITING_APPROVAL: "interrupted",
    RunStatus.CANCELLED: "interrupted",
}

# A thread's status, from its newest run's (none yet: idle).
THREAD_STATUS = {
    RunStatus.QUEUED: "busy",
    RunStatus.RUNNING: "busy",
    RunStatus.AWAITING_APPROVAL: "interrupted",
    RunStatus.FAILED: "error",
}
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")

# LangGraph's multitask strategies onto the platform's if_busy. `rollback` cancels the active
# run as `interrupt` does; what that run already wrote stays in the thread.
IF_BUSY = {
    "reject": IfBusy.REJECT,
    "enqueue": IfBusy.ENQUEUE,
    "interrupt": IfBusy.INTERRUPT,
    "rollback": IfBusy.INTERRUPT,
}

ROLES = {"user": "human", "assistant": "ai", "tool": "tool", "system": "system"}


def assistant_id(name: str) -> str:
    return str(uuid.uuid5(ASSISTANTS, name))


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def assistant(agent: Agent) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id(agent.name),
        "graph_id": agent.name,
        "name": agent.name,
        "description": agent.description or None,
        "config": {},
        "context": {},
        "metadata": {},
        "version": 1,
        "created_at": _time(agent.created_at),
        "updated_at": _time(agent.updated_at),
    }


def thread_status(last_run_status: str | None) -> str:
    return THREAD_STATUS.get(RunStatus(last_run_status), "idle") if last_run_status else "idle"


def thread(session: Session, status: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata = {**session.metadata, "graph_id": session.agent.name, "assistant_id": assistant_id(session.agent.name)}
    return {
        "thread_id": str(session.pk),
        "created_at": _time(session.created_at),
        "updated_at": _time(session.updated_at),
        "metadata": metadata,
        "status": status,
        "values": values if values is not None else {},
        "interrupts": {},
    }


def run(row: Run, multitask_strategy: str = "reject") -> dict[str, Any]:
    return {
        "run_id": str(row.pk),
        "thread_id": str(row.session_id),
        "assistant_id": assistant_id(row.agent.name),
        "created_at": _time(row.created_at),
        "updated_at": _time(row.finished_at or row.started_at or row.created_at),
        "status": RUN_STATUS[RunStatus(row.status)],
        "metadata": row.metadata,
        "multitask_strategy": multitask_strategy,
        "kwargs": {},
    }


def message_id(session_id: uuid.UUID, position: int) -> str:
    """A message's id, known before it is written (a streamed answer has it from its first chunk)."""
    return str(uuid.uuid5(session_id, str(position)))


def message(row: Message) -> dict[str, Any]:
    """A message as LangChain serializes it (`BaseMessage.model_dump()`)."""
    kind = ROLES[row.role]
    out: dict[str, Any] = {
        "type": kind,
        "content": row.content,
        "id": message_id(row.session_id, row.position),
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {},
    }
    if kind == "ai":
        calls = [_tool_call(call) for call in row.tool_calls]
        out.update(tool_calls=calls, invalid_tool_calls=[], usage_metadata=None)
    elif kind == "tool":
        out.update(tool_call_id=row.tool_call_id, name=row.tool_name, status="error" if row.is_error else "success")
    return out


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"name": call["name"], "args": call["arguments"], "id": call["id"], "type": "tool_call"}


def values(messages: Iterable[Message]) -> dict[str, Any]:
    return {"messages": [message(row) for row in messages]}


def interrupt(request: ApprovalRequest) -> dict[str, Any]:
    """A tool call waiting for approval, as a LangGraph interrupt."""
    value = {
        "approval_id": str(request.pk),
        "call_id": request.call_id,
        "tool": request.tool_name,
        "arguments": request.arguments,
        "expires_at": _time(request.expires_at),
    }
    return {"value": value, "id": str(request.pk)}


def interrupt_of(requested: dict[str, Any]) -> dict[str, Any]:
    """The interrupt an `approval.requested` event's data stands for (as `interrupt` has it)."""
    keys = ("approval_id", "call_id", "tool", "arguments", "expires_at")
    return {"value": {key: requested.get(key) for key in keys}, "id": requested["approval_id"]}


def state(
    session: Session, messages: list[Message], checkpoint_id: str | None, pending: list[ApprovalRequest]
) -> dict[str, Any]:
    """A thread's state: its values now, and the tool calls waiting for approval as interrupts
    of a `tools` task. No checkpoints are kept apart from the messages; the newest run stands
    for the checkpoint."""
    checkpoint = {"thread_id": str(session.pk), "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    interrupts = [interrupt(request) for request in pending]
    task = {"id": checkpoint_id, "name": "tools", "path": ["tools"], "error": None, "interrupts": interrupts}
    return {
        "values": values(messages),
        "next": ["tools"] if interrupts else [],
        "tasks": [{**task, "checkpoint": None, "state": None, "result": None}] if interrupts else [],
        "interrupts": interrupts,
        "checkpoint": checkpoint,
        "parent_checkpoint": None,
        "metadata": {"graph_id": session.agent.name, "assistant_id": assistant_id(session.agent.name)},
        "created_at": _time(messages[-1].created_at if messages else session.created_at),
    }


def human_input(body: Any) -> str:
    """The text of a run's input: `{"messages": [...]}` ending with one human message."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, dict | str):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        raise InvalidInput('input must be {"messages": [...]} with a human message.', details={"field": "input"})
    if len(messages) > 1:
        raise InvalidInput(
            "Send one new human message per run: the thread keeps the conversation.", details={"field": "input"}
        )
    return _text(messages[0])


def _text(item: Any) -> str:
    if isinstance(item, str):
        return item
    kind = item.get("type") or item.get("role") if isinstance(item, dict) else None
    if kind not in ("human", "user"):
        raise InvalidInput("The input message must be a human (user) message.", details={"field": "input"})
    content = item.get("content")
    if isinstance(content, list):  # content blocks: the text ones, joined
        content = "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    if not isinstance(content, str) or not content:
        raise InvalidInput("The human message needs text content.", details={"field": "input"})
    return content
