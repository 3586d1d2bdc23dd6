"""A run's events as A2A stream events: its state as status updates, its answer as an
artifact (streamed in chunks, then replaced by the whole answer), ending when the run ends
or pauses for approval."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from a2a.types import a2a_pb2 as a2a

from agentplatform.pools import web_pool
from agents.a2a_server import selectors, shapes
from agents.api.streams import run_events
from agents.events import EventType
from agents.models import Run

ENDS = {EventType.RUN_COMPLETED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_AWAITING_APPROVAL}

Update = a2a.TaskStatusUpdateEvent | a2a.TaskArtifactUpdateEvent


async def task_events(run: Run) -> AsyncGenerator[Update, None]:
    """Status and artifact updates of the run's task, in the run's order."""
    chunks = 0
    async with contextlib.aclosing(run_events(run.pk, run.session_id, 0)) as events:
        async for event in events:
            if event is None:  # a quiet run: the SSE response keeps itself alive
                continue
            kind = event["type"]
            if kind in (EventType.RUN_STARTED, EventType.RUN_RESUMED):
                yield _status(run, a2a.TASK_STATE_WORKING)
            elif kind == EventType.MESSAGE_DELTA:
                yield _chunk(run, event["data"]["text"], append=chunks > 0, last=False)
                chunks += 1
            elif kind in ENDS:
                task = await web_pool().run(selectors.task, run.pk)
                if kind == EventType.RUN_COMPLETED:
                    yield _chunk(run, task.artifacts[0].parts[0].text, append=False, last=True)
                yield a2a.TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=task.status)
                return


def _status(run: Run, state: a2a.TaskState) -> a2a.TaskStatusUpdateEvent:
    status = a2a.TaskStatus(state=state)
    status.timestamp.GetCurrentTime()
    return a2a.TaskStatusUpdateEvent(task_id=str(run.pk), context_id=str(run.session_id), status=status)


def _chunk(run: Run, text: str, *, append: bool, last: bool) -> a2a.TaskArtifactUpdateEvent:
    """A piece of the answer (`append`ed to what came before), or the whole of it (`last`)."""
    return a2a.TaskArtifactUpdateEvent(
        task_id=str(run.pk),
        context_id=str(run.session_id),
        artifact=shapes.answer(run, text),
        append=append,
        last_chunk=last,
    )
