"""A run's events as LangGraph's stream: `metadata` first, then for each requested mode
`values` (the thread's values after each step), `messages/metadata` + `messages/partial` +
`messages/complete` (stream mode `messages`) or `messages` (`messages-tuple`: each chunk with
its metadata), and `error` when the run fails. It ends with the run, or when the run pauses
for an approval."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agentplatform.api.sse import HEARTBEAT
from agentplatform.pools import web_pool
from agents.api.streams import run_events
from agents.events import EventType
from agents.langgraph import selectors as lg_selectors
from agents.langgraph import translate
from agents.models import Message, Run

MODES = ("values", "messages", "messages-tuple")
ENDS = {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_AWAITING_APPROVAL}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def stream_run(run: Run, modes: list[str], after: int = 0) -> AsyncIterator[str]:
    """The run's stream from its start, or (a resumed run) from its events after `after`."""
    count = len(await web_pool().run(lg_selectors.thread_messages, run.session_id)) if after else None
    parts = Parts(run, modes, count)
    yield sse("metadata", {"run_id": str(run.pk), "attempt": 1})
    async for event in run_events(run.pk, run.session_id, after):
        if event is None:
            yield HEARTBEAT
            continue
        if event["type"] == EventType.MESSAGE_DELTA:
            for part in parts.delta(event["data"]["text"]):
                yield part
            continue
        for part in parts.step(await web_pool().run(lg_selectors.thread_messages, run.session_id), event):
            yield part
        if event["type"] == EventType.RUN_FAILED:
            error = event["data"].get("error") or {}
            yield sse("error", {"error": error.get("code", "error"), "message": error.get("message", "")})
        if event["type"] in ENDS:
            break


class Parts:
    """What one run's stream has sent so far, and the parts each new step adds."""

    def __init__(self, run: Run, modes: list[str], count: int | None = None) -> None:
        self.run, self.modes = run, set(modes)
        self.count = count  # the thread's messages the stream has accounted for (None: from the start)
        self.streamed: dict[str, str] = {}  # message id -> text streamed so far
        self.metadata = {
            "run_id": str(run.pk),
            "thread_id": str(run.session_id),
            "graph_id": run.agent.name,
            "assistant_id": translate.assistant_id(run.agent.name),
            "langgraph_node": "agent",
        }

    def delta(self, text: str) -> list[str]:
        """A chunk of the answer being written: it will be the thread's next message."""
        if self.count is None:  # the run's first step has not been read yet
            return []
        msg_id = translate.message_id(self.run.session_id, self.count)
        parts = []
        if "messages" in self.modes:
            if msg_id not in self.streamed:
                parts.append(sse("messages/metadata", {msg_id: {"metadata": self.metadata}}))
            so_far = self.streamed.get(msg_id, "") + text
            parts.append(sse("messages/partial", [_ai(msg_id, so_far)]))
        if "messages-tuple" in self.modes:
            parts.append(sse("messages", [{**_ai(msg_id, text), "type": "AIMessageChunk"}, self.metadata]))
        self.streamed[msg_id] = self.streamed.get(msg_id, "") + text
        return parts

    def step(self, messages: list[Message], event: dict[str, Any]) -> list[str]:
        """The thread as it was at `event` (read now, cut at the event's position: a replayed
        event shows the thread as it was then): the messages it gained, and its values."""
        first = self.count is None
        upto = self._upto(messages, event)
        new = messages[self.count or upto : upto]
        self.count = upto
        parts = [part for row in new for part in self._complete(row)]
        if "values" in self.modes and (first or new):
            parts.append(sse("values", translate.values(messages[:upto])))
        return parts

    def _upto(self, messages: list[Message], event: dict[str, Any]) -> int:
        mine = [i for i, row in enumerate(messages) if row.run_id == self.run.pk]
        if not mine:
            return self.count or len(messages)
        if event["type"] == EventType.RUN_STARTED:
            return mine[0] + 1  # the run's own (human) message
        if event["type"] in ENDS:
            return mine[-1] + 1
        position = event["data"].get("position")
        index = next((i for i in mine if messages[i].position == position), None)
        return max(self.count or 0, index + 1 if index is not None else 0)

    def _complete(self, row: Message) -> list[str]:
        if row.role == "user":
            return []
        shaped = translate.message(row)
        parts = []
        if "messages" in self.modes:
            if shaped["id"] not in self.streamed:
                parts.append(sse("messages/metadata", {shaped["id"]: {"metadata": self._metadata(row)}}))
            parts.append(sse("messages/complete", [shaped]))
        if "messages-tuple" in self.modes and shaped["id"] not in self.streamed:
            parts.append(sse("messages", [shaped, self._metadata(row)]))
        return parts

    def _metadata(self, row: Message) -> dict[str, Any]:
        return {**self.metadata, "langgraph_node": "tools" if row.role == "tool" else "agent"}


def _ai(msg_id: str, content: str) -> dict[str, Any]:
    return {
        "type": "ai",
        "content": content,
        "id": msg_id,
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {},
        "tool_calls": [],
        "invalid_tool_calls": [],
        "usage_metadata": None,
    }
