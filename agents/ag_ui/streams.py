"""A run's AG-UI event stream, followed live (replayed from the durable record, then from the
channel layer, as every stream of the platform is) and encoded by the protocol package's
`EventEncoder`: RUN_STARTED first, the translated events (`translate`), and before the run's
last event a MESSAGES_SNAPSHOT of the thread (its session's conversation). It ends with the
run, or when the run pauses for approval decisions.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ag_ui.core import MessagesSnapshotEvent, RunAgentInput, RunStartedEvent
from ag_ui.encoder import EventEncoder

from agentplatform.api.sse import HEARTBEAT
from agentplatform.pools import web_pool
from agents import selectors
from agents.ag_ui import selectors as ag_selectors
from agents.ag_ui.translate import Translation
from agents.api.streams import run_events
from agents.events import FINAL_EVENTS, EventType
from agents.models import Run

ENCODER = EventEncoder()


def started(parsed: RunAgentInput, run: Run) -> RunStartedEvent:
    """RUN_STARTED: the client's thread and run ids; the platform's ids in `metadata`."""
    ids = {"session_id": str(run.session_id), "run_id": str(run.pk), "agent": run.agent.name}
    return RunStartedEvent(
        thread_id=parsed.thread_id, run_id=parsed.run_id, input=parsed, metadata={"agentplatform": ids}
    )


async def run_stream(parsed: RunAgentInput, run: Run, after: int = 0) -> AsyncIterator[str]:
    """The run's events after `after` (a resumed run: those after its pause) as AG-UI events."""
    yield ENCODER.encode(started(parsed, run))
    translation = Translation(run.pk, parsed.thread_id, parsed.run_id)
    followed: Any = run_events(run.pk, run.session_id, after)  # an async generator: closed at once, it unsubscribes
    async with contextlib.aclosing(followed):
        async for event in followed:
            if event is None:
                yield HEARTBEAT
                continue
            ends = await _ends(run, event)
            if event["type"] == EventType.RUN_AWAITING_APPROVAL and not ends:
                continue  # a pause already decided: the run went on
            out = translation.feed(event)
            if ends and event["type"] != EventType.RUN_FAILED:
                snapshot = await web_pool().run(ag_selectors.messages_snapshot, run.session_id)
                out.insert(len(out) - 1, MessagesSnapshotEvent(messages=snapshot))
            for made in out:
                yield ENCODER.encode(made)
            if ends:
                break


async def _ends(run: Run, event: dict[str, Any]) -> bool:
    """Whether the event ends the stream: the run's end, or a pause it has not been resumed
    from since (a later decision resumes it)."""
    if event["type"] in FINAL_EVENTS.values():
        return True
    if event["type"] != EventType.RUN_AWAITING_APPROVAL:
        return False
    return bool(await web_pool().run(selectors.last_seq, run.pk) == event["seq"])
