"""One run's events as the parts of LangGraph's stream, for each stream mode asked for:

- `values`: the thread's values after each step;
- `messages`: `messages/metadata`, `messages/partial` (the answer so far) and
  `messages/complete` (each message once written);
- `messages-tuple`: `messages`, each chunk (or whole tool call or tool result) with its metadata;
- `updates`: what each node added, `{"agent" | "tools": {"messages": [...]}}`, and
  `{"__interrupt__": [...]}` when the run pauses for approval;
- `events`: LangChain's `astream_events` (v2) shapes: the graph's `on_chain_start/end`, the
  model's `on_chat_model_start/stream/end`, each tool's `on_tool_start/end`.

The translation depends only on the events and the thread's messages, so a stream replayed
from the start yields the same parts again: that is how a stream resumes after an event id.
"""

from __future__ import annotations

import uuid
from typing import Any

from agents.events import EventType
from agents.langgraph import translate
from agents.models import Message, Run

MODES = ("values", "messages", "messages-tuple", "updates", "events")
ENDS = {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_AWAITING_APPROVAL}
NODES = {"assistant": "agent", "tool": "tools"}

Part = tuple[str, Any]  # an SSE event's name and its data


class Parts:
    """What one run's stream has sent so far, and the parts each new event adds."""

    def __init__(self, run: Run, modes: list[str]) -> None:
        self.run, self.modes = run, set(modes)
        self.count: int | None = None  # the thread's messages accounted for (None: the run has not started)
        self.thread: list[Message] = []  # the thread as of the last step
        self.streamed: dict[str, str] = {}  # message id -> text streamed so far
        self.interrupts: list[dict[str, Any]] = []  # the approvals this pause waits on
        self.metadata = {
            "run_id": str(run.pk),
            "thread_id": str(run.session_id),
            "graph_id": run.agent.name,
            "assistant_id": translate.assistant_id(run.agent.name),
            "langgraph_node": "agent",
        }

    def delta(self, text: str) -> list[Part]:
        """A chunk of the answer being written: it will be the thread's next message."""
        if self.count is None:  # the run's first step has not been read yet
            return []
        msg_id = translate.message_id(self.run.session_id, self.count)
        parts: list[Part] = []
        first = msg_id not in self.streamed
        if "messages" in self.modes:
            if first:
                parts.append(("messages/metadata", {msg_id: {"metadata": self.metadata}}))
            parts.append(("messages/partial", [_ai(msg_id, self.streamed.get(msg_id, "") + text)]))
        if "messages-tuple" in self.modes:
            parts.append(("messages", [_chunk(msg_id, text), self.metadata]))
        if "events" in self.modes:
            if first:
                parts.append(self._model_start(msg_id, self.thread))
            parts.append(self._event("on_chat_model_stream", {"chunk": _chunk(msg_id, text)}, model=msg_id))
        self.streamed[msg_id] = self.streamed.get(msg_id, "") + text
        return parts

    def step(self, messages: list[Message], event: dict[str, Any], *, final: bool) -> list[Part]:
        """The thread as it was at `event` (read now, cut at the event's position: a replayed
        event shows the thread as it was then): what it gained, and its values. `final`: the
        event ends the stream (a pause the run has not yet been resumed from, or its end)."""
        first = self.count is None
        upto = self._upto(messages, event, final=final)
        new = messages[self.count or upto : upto]
        self.count, self.thread = upto, messages[:upto]
        parts: list[Part] = []
        if first and "events" in self.modes:
            human = {"messages": [translate.message(row) for row in messages[upto - 1 : upto]]}
            parts.append(self._event("on_chain_start", {"input": human}, name="LangGraph"))
        if event["type"] == EventType.APPROVAL_REQUESTED:
            self.interrupts.append(translate.interrupt_of(event["data"]))
        elif event["type"] == EventType.RUN_RESUMED:
            self.interrupts = []
        for row in new:
            parts.extend(self._complete(row))
        if "values" in self.modes and (first or new):
            parts.append(("values", translate.values(self.thread)))
        if event["type"] == EventType.RUN_AWAITING_APPROVAL and "updates" in self.modes:
            parts.append(("updates", {"__interrupt__": self.interrupts}))  # a pause, ending the stream or not
        if final:
            parts.extend(self._end(event))
        return parts

    def _upto(self, messages: list[Message], event: dict[str, Any], *, final: bool) -> int:
        mine = [i for i, row in enumerate(messages) if row.run_id == self.run.pk]
        if not mine:
            return self.count or len(messages)
        if event["type"] == EventType.RUN_STARTED:
            return mine[0] + 1  # the run's own (human) message
        if final:
            return mine[-1] + 1
        position = event["data"].get("position")
        index = next((i for i in mine if messages[i].position == position), None)
        return max(self.count or 0, index + 1 if index is not None else 0)

    def _complete(self, row: Message) -> list[Part]:
        if row.role == "user":
            return []
        shaped = translate.message(row)
        meta = {**self.metadata, "langgraph_node": NODES[row.role]}
        parts: list[Part] = []
        if "messages" in self.modes:
            if shaped["id"] not in self.streamed:
                parts.append(("messages/metadata", {shaped["id"]: {"metadata": meta}}))
            parts.append(("messages/complete", [shaped]))
        if "messages-tuple" in self.modes and shaped["id"] not in self.streamed:
            parts.append(("messages", [shaped, meta]))
        if "updates" in self.modes:
            parts.append(("updates", {NODES[row.role]: {"messages": [shaped]}}))
        if "events" in self.modes:
            parts.extend(self._events_of(row, shaped))
        return parts

    def _events_of(self, row: Message, shaped: dict[str, Any]) -> list[Part]:
        """The `events` parts a written message stands for: the model call it ends (and the
        tool calls it starts), or the tool call it ends."""
        if row.role == "tool":
            output = {"output": shaped}
            return [self._event("on_tool_end", output, name=row.tool_name, tool=row.tool_call_id, node="tools")]
        before = [m for m in self.thread if m.position < row.position]
        parts = [] if shaped["id"] in self.streamed else [self._model_start(shaped["id"], before)]
        parts.append(self._event("on_chat_model_end", {"output": shaped}, model=shaped["id"]))
        for call in shaped["tool_calls"]:
            start = self._event(
                "on_tool_start", {"input": call["args"]}, name=call["name"], tool=call["id"], node="tools"
            )
            parts.append(start)
        return parts

    def _end(self, event: dict[str, Any]) -> list[Part]:
        parts: list[Part] = []
        if event["type"] == EventType.RUN_FAILED:
            error = event["data"].get("error") or {}
            parts.append(("error", {"error": error.get("code", "error"), "message": error.get("message", "")}))
        elif "events" in self.modes:
            output = translate.values(self.thread)
            parts.append(self._event("on_chain_end", {"output": output}, name="LangGraph"))
        return parts

    def _model_start(self, msg_id: str, before: list[Message]) -> Part:
        given = [translate.message(row) for row in before]  # what the model was given
        return self._event("on_chat_model_start", {"input": {"messages": [given]}}, model=msg_id)

    def _event(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        name: str | None = None,
        model: str | None = None,
        tool: str | None = None,
        node: str = "agent",
    ) -> Part:
        """One `events` part: `model` (a message id) or `tool` (a call id) names the runnable
        it is about, else the graph."""
        graph = str(self.run.pk)
        body: dict[str, Any]
        if model is None and tool is None:
            body = {"name": name, "run_id": graph, "parent_ids": [], "metadata": self.metadata}
        else:
            child = str(uuid.uuid5(self.run.pk, model or tool or ""))
            metadata = {**self.metadata, "langgraph_node": node}
            if model is not None:
                metadata["ls_model_name"] = self.run.model
            body = {"name": name or self.run.model, "run_id": child, "parent_ids": [graph], "metadata": metadata}
        return "events", {"event": kind, "data": data, "tags": [], **body}


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


def _chunk(msg_id: str, text: str) -> dict[str, Any]:
    return {**_ai(msg_id, text), "type": "AIMessageChunk", "tool_call_chunks": []}
