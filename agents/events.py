"""Run events: what each step of a run looks like to a client that follows it.

Events are derived here from what the run records (its messages and its final status),
so the stream and the transcript cannot disagree. Each is stored with a per-run sequence
number (`RunEvent.seq`) and served as Server-Sent Events with that number as the id.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from agentplatform import layers
from agents.models import Message, Run, RunEvent, RunStatus
from approvals.models import ApprovalRequest


class EventType(StrEnum):
    RUN_STARTED = "run.started"
    MESSAGE_DELTA = "message.delta"
    TOOL_CALL_STARTED = "tool.call.started"
    TOOL_CALL_COMPLETED = "tool.call.completed"
    MESSAGE_COMPLETED = "message.completed"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    APPROVAL_REQUESTED = "approval.requested"
    RUN_AWAITING_APPROVAL = "run.awaiting_approval"
    RUN_RESUMED = "run.resumed"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_EXPIRED = "approval.expired"


FINAL_EVENTS = {
    RunStatus.COMPLETED: EventType.RUN_COMPLETED,
    RunStatus.FAILED: EventType.RUN_FAILED,
    RunStatus.CANCELLED: EventType.RUN_CANCELLED,
}

Event = tuple[EventType, dict[str, Any]]


def run_started(run: Run) -> Event:
    data = {"run_id": str(run.pk), "session_id": str(run.session_id), "agent": run.agent.name, "input": run.input}
    return EventType.RUN_STARTED, data


def for_message(message: Message) -> list[Event]:
    """The events one recorded message stands for (a user message has none of its own)."""
    if message.role == "tool":
        data = {
            "call_id": message.tool_call_id,
            "name": message.tool_name,
            "result": message.content,
            "is_error": message.is_error,
            "position": message.position,
        }
        return [(EventType.TOOL_CALL_COMPLETED, data)]
    if message.role != "assistant":
        return []
    events: list[Event] = [
        (
            EventType.TOOL_CALL_STARTED,
            {"call_id": call["id"], "name": call["name"], "arguments": call["arguments"], "position": message.position},
        )
        for call in message.tool_calls
    ]
    if message.content and not message.tool_calls:
        events.append((EventType.MESSAGE_COMPLETED, {"content": message.content, "position": message.position}))
    return events


def text_delta(text: str) -> Event:
    """A chunk of the answer being generated (chunks that arrive close together are joined)."""
    return EventType.MESSAGE_DELTA, {"text": text}


def run_finished(run: Run) -> Event:
    usage = {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens}
    data = {"status": run.status, "output": run.output, "error": run.error, "usage": usage, "steps": run.steps}
    return FINAL_EVENTS[RunStatus(run.status)], data


def approval_requested(request: ApprovalRequest) -> Event:
    data = {
        "approval_id": str(request.pk),
        "call_id": request.call_id,
        "tool": request.tool_name,
        "arguments": request.arguments,
        "expires_at": request.expires_at.isoformat(),
    }
    return EventType.APPROVAL_REQUESTED, data


def awaiting_approval(requests: list[ApprovalRequest]) -> Event:
    return EventType.RUN_AWAITING_APPROVAL, {"approval_ids": [str(r.pk) for r in requests]}


def approval_decided(request: ApprovalRequest) -> Event:
    data = {
        "approval_id": str(request.pk),
        "call_id": request.call_id,
        "tool": request.tool_name,
        "status": request.status,
        "arguments": request.approved_arguments,
        "diff": request.diff,
        "reason": request.reason,
        "comment": request.comment,
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "channel": request.channel,
    }
    return EventType.APPROVAL_DECIDED, data


def run_resumed() -> Event:
    return EventType.RUN_RESUMED, {}


def approval_expired(request: ApprovalRequest) -> Event:
    data = {"approval_id": str(request.pk), "call_id": request.call_id, "action": request.expiry_action}
    return EventType.APPROVAL_EXPIRED, data


def is_final(event_type: str) -> bool:
    return event_type in FINAL_EVENTS.values()


def payload(event: RunEvent) -> dict[str, Any]:
    """An event as clients receive it, live or replayed."""
    return {
        "seq": event.seq,
        "type": event.type,
        "run_id": str(event.run_id),
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }


def as_sse(event: dict[str, Any]) -> str:
    """One event in the text/event-stream format; the id is what Last-Event-ID resumes after."""
    return f"id: {event['seq']}\nevent: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


def session_group(session_id: object) -> str:
    """The Channels group that receives every event of a session's runs."""
    return f"session.{session_id}"


def publish(session_id: object, rows: list[RunEvent]) -> None:
    """Fan new events out to live streams (after commit; readers recover any loss from the database)."""
    if rows:
        message = {"type": "run.events", "events": [payload(row) for row in rows]}
        layers.publisher().publish(session_group(session_id), message)
