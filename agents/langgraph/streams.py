"""A run's stream as LangGraph's server sends it: `metadata` first, then the parts of each
requested mode (see `parts`), `error` when the run fails. It ends with the run, or when the
run pauses for an approval.

Every part has an SSE id, `<event seq>-<index>`: the run event it comes from and its place
among that event's parts. A stream resumed after an id (`Last-Event-ID`) is the run's stream
translated again from its start, sending only the parts after that id; the translation is
deterministic, so the client gets exactly what it missed.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agentplatform.api.sse import HEARTBEAT
from agentplatform.errors import InvalidInput
from agentplatform.pools import web_pool
from agents import selectors
from agents.api.streams import run_events
from agents.events import FINAL_EVENTS, EventType
from agents.langgraph import selectors as lg_selectors
from agents.langgraph.parts import MODES, Parts
from agents.models import Message, Run

__all__ = ["MODES", "Position", "stream_modes", "stream_run"]

ID = re.compile(r"(\d{1,18})-(\d{1,9})")


@dataclass(frozen=True, order=True)
class Position:
    """A part's place in a run's stream: its event's sequence number, its index among the
    event's parts."""

    seq: int
    index: int = 0

    @classmethod
    def parse(cls, raw: str) -> Position:
        found = ID.fullmatch(raw.strip())
        if found is None:
            message = "Last-Event-ID: give the id of a part of this run's stream, e.g. 12-0."
            raise InvalidInput(message, details={"param": "Last-Event-ID"})
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def after_event(cls, seq: int) -> Position:
        """Past every part of the event `seq`."""
        return cls(seq, sys.maxsize)

    def __str__(self) -> str:
        return f"{self.seq}-{self.index}"


def sse(event: str, data: Any, part_id: str | None = None) -> str:
    head = f"id: {part_id}\n" if part_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream_modes(raw: Any) -> list[str]:
    """The stream modes a request asks for (one, or a list): `values` when none."""
    modes = [raw] if isinstance(raw, str) else (raw or ["values"])
    if not isinstance(modes, list) or not all(mode in MODES for mode in modes):
        supported = ", ".join(MODES)
        raise InvalidInput(f"stream_mode: supported modes are {supported}.", details={"field": "stream_mode"})
    return modes


async def stream_run(
    run: Run, modes: list[str], after: Position | None = None, *, metadata: bool | None = None
) -> AsyncIterator[str]:
    """The run's stream from its start, or only its parts after `after`. It opens with the
    `metadata` part unless it resumes a stream (which had it first), or as `metadata` says."""
    if metadata if metadata is not None else after is None:
        yield sse("metadata", {"run_id": str(run.pk), "attempt": 1})
    followed: Any = run_events(run.pk, run.session_id, 0)  # an async generator: closed at once, it unsubscribes
    async with contextlib.aclosing(followed):
        async for part in _parts(run, Parts(run, modes), followed, after):
            yield part


async def _parts(
    run: Run, parts: Parts, followed: AsyncIterator[dict[str, Any] | None], after: Position | None
) -> AsyncIterator[str]:
    messages: list[Message] | None = None
    async for event in followed:
        if event is None:
            yield HEARTBEAT
            continue
        seq = event["seq"]
        if event["type"] == EventType.MESSAGE_DELTA:
            out = parts.delta(event["data"]["text"])
            final = False
        else:
            # Every event up to `after` was stored before this stream began: one read covers them.
            if messages is None or after is None or seq >= after.seq:
                messages = await web_pool().run(lg_selectors.thread_messages, run.session_id)
            final = await _ends(run, event)
            out = parts.step(messages, event, final=final)
        for index, (name, data) in enumerate(out):
            position = Position(seq, index)
            if after is None or position > after:
                yield sse(name, data, str(position))
        if final:
            break


async def _ends(run: Run, event: dict[str, Any]) -> bool:
    """Whether the event ends the run's stream: the run's end, or a pause it has not been
    resumed from (a later decision resumes it: a stream that follows it again goes on)."""
    if event["type"] in FINAL_EVENTS.values():
        return True
    if event["type"] != EventType.RUN_AWAITING_APPROVAL:
        return False
    return bool(await web_pool().run(selectors.last_seq, run.pk) == event["seq"])
