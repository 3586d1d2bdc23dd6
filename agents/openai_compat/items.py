"""A run's events as a response's output items, and as the Responses stream's events.

One translation serves both: `GET /responses/{id}` feeds every stored event of the run and
takes the items; a stream feeds them as they come and sends what each one makes. So what is
streamed and what is read back cannot disagree.

- The model's text is a `message` item (`output_text` content), opened by its first chunk
  and closed when the message is complete or the model calls tools.
- A tool the agent ran (on the server, as a remote MCP server's tools run) is an `mcp_call`
  item with its arguments (the approved ones, for a call that waited for approval), its
  output or its error.
- A call waiting for approval is an `mcp_approval_request` item, id = the approval's id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from agents.events import EventType

SERVER_LABEL = "agentplatform"  # the `server_label` of the agent's tools

Item = dict[str, Any]
StreamEvent = dict[str, Any]  # without its sequence number, which the stream gives it

ENDS = frozenset(
    {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_AWAITING_APPROVAL}
)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class Output:
    """The output items a run's events make, in order, and the stream events for each event."""

    def __init__(self, run_id: uuid.UUID) -> None:
        self.run_id = run_id
        self.items: list[Item] = []
        self.open: int | None = None  # the index of the message being written
        self.texts = 0  # message items so far (a message's id is derived from its number)
        self.arguments: dict[str, Any] = {}  # call id -> the arguments it runs with
        self.approvals: dict[str, str] = {}  # call id -> the approval request it waited on

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        """Take the run's next event; the stream events it makes."""
        handler = self._handlers.get(event["type"])
        if handler is not None:
            return handler(event["data"])
        return self._close() if event["type"] in ENDS else []

    @property
    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], list[StreamEvent]]]:
        return {
            EventType.MESSAGE_DELTA: lambda data: self._text(data["text"]),
            EventType.MESSAGE_COMPLETED: lambda data: self._complete(data["content"]),
            EventType.TOOL_CALL_STARTED: self._call_started,
            EventType.APPROVAL_REQUESTED: lambda data: [*self._close(), *self._approval_request(data)],
            EventType.APPROVAL_DECIDED: self._decided,
            EventType.TOOL_CALL_COMPLETED: lambda data: [*self._close(), *self._call(data)],
        }

    def _call_started(self, data: dict[str, Any]) -> list[StreamEvent]:
        self.arguments[data["call_id"]] = data["arguments"]
        return self._close()  # the text before the calls, if any, is complete

    def _decided(self, data: dict[str, Any]) -> list[StreamEvent]:
        self.approvals[data["call_id"]] = data["approval_id"]
        if data["arguments"] is not None:  # approved: the call runs with these
            self.arguments[data["call_id"]] = data["arguments"]
        return []

    def _text(self, delta: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self.open is None:
            out = self._open()
        assert self.open is not None
        self.items[self.open]["content"][0]["text"] += delta
        return [*out, {**self._at(self.open), "type": "response.output_text.delta", "delta": delta, "logprobs": []}]

    def _open(self) -> list[StreamEvent]:
        msg_id = f"msg_{uuid.uuid5(self.run_id, f'text-{self.texts}').hex}"
        item: Item = {"id": msg_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self.texts += 1
        self.items.append(item)
        self.open = len(self.items) - 1
        added = {"type": "response.output_item.added", "output_index": self.open, "item": _copy(item)}
        item["content"].append(_text_part(""))
        return [added, {**self._at(self.open), "type": "response.content_part.added", "part": _text_part("")}]

    def _at(self, index: int) -> StreamEvent:
        return {"item_id": self.items[index]["id"], "output_index": index, "content_index": 0}

    def _complete(self, content: str) -> list[StreamEvent]:
        """A message as written: what its chunks have not sent yet, then its end."""
        so_far = self.items[self.open]["content"][0]["text"] if self.open is not None else ""
        rest = content[len(so_far) :] if content.startswith(so_far) else ""
        return [*(self._text(rest) if rest else []), *self._close()]

    def _close(self) -> list[StreamEvent]:
        if self.open is None:
            return []
        item, index = self.items[self.open], self.open
        self.open = None
        item["status"] = "completed"
        part = item["content"][0]
        return [
            {**self._at(index), "type": "response.output_text.done", "text": part["text"], "logprobs": []},
            {**self._at(index), "type": "response.content_part.done", "part": _copy(part)},
            {"type": "response.output_item.done", "output_index": index, "item": _copy(item)},
        ]

    def _approval_request(self, data: dict[str, Any]) -> list[StreamEvent]:
        item = {
            "id": data["approval_id"],
            "type": "mcp_approval_request",
            "name": data["tool"],
            "arguments": json.dumps(data["arguments"]),
            "server_label": SERVER_LABEL,
        }
        self.items.append(item)
        index = len(self.items) - 1
        return [
            {"type": "response.output_item.added", "output_index": index, "item": _copy(item)},
            {"type": "response.output_item.done", "output_index": index, "item": _copy(item)},
        ]

    def _call(self, data: dict[str, Any]) -> list[StreamEvent]:
        call_id = data["call_id"]
        item: Item = {
            "id": f"mcp_{call_id}",
            "type": "mcp_call",
            "name": data["name"],
            "arguments": json.dumps(self.arguments.get(call_id, {})),
            "server_label": SERVER_LABEL,
            "approval_request_id": self.approvals.get(call_id),
            "status": "in_progress",
            "output": None,
            "error": None,
        }
        self.items.append(item)
        index = len(self.items) - 1
        at = {"item_id": item["id"], "output_index": index}
        added = [
            {"type": "response.output_item.added", "output_index": index, "item": _copy(item)},
            {**at, "type": "response.mcp_call.in_progress"},
        ]
        if data["is_error"]:
            content = [{"type": "text", "text": data["result"]}]
            item.update(status="failed", error={"type": "mcp_tool_execution_error", "content": content})
        else:
            item.update(status="completed", output=data["result"])
        done = "response.mcp_call.failed" if data["is_error"] else "response.mcp_call.completed"
        finished = {"type": "response.output_item.done", "output_index": index, "item": _copy(item)}
        return [*added, {**at, "type": done}, finished]

    def snapshot(self) -> list[Item]:
        return [_copy(item) for item in self.items]


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))
