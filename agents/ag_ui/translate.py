"""A run's events as AG-UI events, built with the protocol package's own models.

- The model's text is a text message: TEXT_MESSAGE_START at its first chunk, CONTENT for
  each chunk as it is written, END when the message is complete or the model calls tools.
- A tool the agent runs (on the server) is TOOL_CALL_START, ARGS (its arguments as JSON, in
  one fragment), END, then TOOL_CALL_RESULT with what it returned.
- A pause for approval ends the stream: a CUSTOM `approval_required` event naming the
  approval requests, then RUN_FINISHED with an `interrupt` outcome (one interrupt per
  request, its id the approval's id).
- The run's end: RUN_FINISHED (its answer as `result`, its token usage), RUN_FINISHED with
  a `cancelled` outcome, or RUN_ERROR.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    Interrupt,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)

from agents.events import EventType

APPROVAL_REQUIRED = "approval_required"  # the CUSTOM event's name
APPROVAL_REASON = "tool_approval"  # an interrupt's reason
# What a resume entry's payload may say (the schema a client can build its form from).
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean"},
        "arguments": {"type": "object", "description": "Edited arguments the call runs with (approving)."},
        "reason": {"type": "string", "description": "Why not (rejecting): the model reads it as the result."},
    },
    "required": ["approved"],
}


class Translation:
    """The AG-UI events a run's events make, in order. `thread_id` and `run_id` are the
    client's, echoed on RUN_FINISHED as the protocol asks."""

    def __init__(self, run_pk: uuid.UUID, thread_id: str, run_id: str) -> None:
        self.run_pk, self.thread_id, self.run_id = run_pk, thread_id, run_id
        self.open: str | None = None  # the text message being written
        self.written = ""  # its text so far
        self.texts = 0  # text messages so far (a message's id is derived from its number)
        self.approvals: dict[str, dict[str, Any]] = {}  # approval id -> its approval.requested data

    def feed(self, event: dict[str, Any]) -> list[BaseEvent]:
        handler = self._handlers.get(event["type"])
        return handler(event["data"]) if handler is not None else []

    @property
    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], list[BaseEvent]]]:
        return {
            EventType.MESSAGE_DELTA: lambda data: self._text(data["text"]),
            EventType.MESSAGE_COMPLETED: lambda data: self._complete(data["content"]),
            EventType.TOOL_CALL_STARTED: lambda data: [*self._close(), *self._call(data)],
            EventType.TOOL_CALL_COMPLETED: lambda data: [*self._close(), self._result(data)],
            EventType.APPROVAL_REQUESTED: self._requested,
            EventType.RUN_AWAITING_APPROVAL: lambda data: [*self._close(), *self._paused(data["approval_ids"])],
            EventType.RUN_COMPLETED: lambda data: [*self._close(), self._finished(data)],
            EventType.RUN_CANCELLED: lambda data: [*self._close(), self._cancelled()],
            EventType.RUN_FAILED: lambda data: [*self._close(), self._failed(data)],
        }

    def _text(self, delta: str) -> list[BaseEvent]:
        out: list[BaseEvent] = []
        if self.open is None:
            self.open = str(uuid.uuid5(self.run_pk, f"text-{self.texts}"))
            self.texts += 1
            self.written = ""
            out.append(TextMessageStartEvent(message_id=self.open, role="assistant"))
        self.written += delta
        return [*out, TextMessageContentEvent(message_id=self.open, delta=delta)]

    def _complete(self, content: str) -> list[BaseEvent]:
        """A message as written: what its chunks have not sent yet, then its end."""
        so_far = self.written if self.open is not None else ""
        rest = content[len(so_far) :] if content.startswith(so_far) else ""
        return [*(self._text(rest) if rest else []), *self._close()]

    def _close(self) -> list[BaseEvent]:
        if self.open is None:
            return []
        message_id, self.open = self.open, None
        return [TextMessageEndEvent(message_id=message_id)]

    def _call(self, data: dict[str, Any]) -> list[BaseEvent]:
        call_id = data["call_id"]
        return [
            ToolCallStartEvent(tool_call_id=call_id, tool_call_name=data["name"]),
            ToolCallArgsEvent(tool_call_id=call_id, delta=json.dumps(data["arguments"], ensure_ascii=False)),
            ToolCallEndEvent(tool_call_id=call_id),
        ]

    def _result(self, data: dict[str, Any]) -> BaseEvent:
        message_id = str(uuid.uuid5(self.run_pk, f"result-{data['call_id']}"))
        return ToolCallResultEvent(
            message_id=message_id, tool_call_id=data["call_id"], content=data["result"], role="tool"
        )

    def _requested(self, data: dict[str, Any]) -> list[BaseEvent]:
        self.approvals[data["approval_id"]] = data
        return []

    def _paused(self, approval_ids: list[str]) -> list[BaseEvent]:
        requests = [self.approvals.get(pk, {"approval_id": pk}) for pk in approval_ids]
        value = {"run_id": str(self.run_pk), "approvals": requests}
        interrupts = [
            Interrupt(
                id=request["approval_id"],
                reason=APPROVAL_REASON,
                message=f"Approve the call to {request.get('tool', 'a tool')}?",
                tool_call_id=request.get("call_id"),
                response_schema=DECISION_SCHEMA,
                expires_at=request.get("expires_at"),
                metadata={"tool": request.get("tool"), "arguments": request.get("arguments")},
            )
            for request in requests
        ]
        return [
            CustomEvent(name=APPROVAL_REQUIRED, value=value),
            RunFinishedEvent(
                thread_id=self.thread_id,
                run_id=self.run_id,
                outcome=RunFinishedInterruptOutcome(interrupts=interrupts),
            ),
        ]

    def _finished(self, data: dict[str, Any]) -> BaseEvent:
        usage = data.get("usage") or {}
        tokens = TokenUsage(
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            total_tokens=usage.get("input_tokens", 0) + usage.get("output_tokens", 0),
        )
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, result=data.get("output"), usage=[tokens])

    def _cancelled(self) -> BaseEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=RunFinishedCancelledOutcome())

    def _failed(self, data: dict[str, Any]) -> BaseEvent:
        error = data.get("error") or {}
        message = str(error.get("message") or "The run failed.")
        return RunErrorEvent(message=message, code=str(error.get("code") or "run_failed"))
