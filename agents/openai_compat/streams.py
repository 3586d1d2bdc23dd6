"""A run's events as OpenAI's streams, followed live (replayed from the durable record, then
from the channel layer, as every stream of the platform is).

- Chat Completions: `chat.completion.chunk`s (`data:` only): the role, the answer's text as
  it is written, the finish, the usage when asked for, then `data: [DONE]`. A run that ends
  without an answer ends the stream with an `{"error": ...}` chunk, which the SDK raises.
- Responses: `response.created`, `response.in_progress`, then the output items' events
  (`items.Output`), and `response.completed` (or `response.failed`), each with its
  `sequence_number`. A run that pauses for approvals completes with its approval requests.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

from agentplatform.api.sse import HEARTBEAT
from agentplatform.pools import web_pool
from agents.api.streams import run_events
from agents.events import EventType
from agents.models import Run, RunStatus
from agents.openai_compat import errors, items, shapes
from agents.openai_compat import selectors as oa_selectors

DONE = "data: [DONE]\n\n"


async def chat_chunks(run: Run, include_usage: bool) -> AsyncIterator[str]:
    yield shapes.sse(None, shapes.chunk(run, include_usage, {"role": "assistant", "content": ""}))
    output = items.Output(run.pk)
    async for event in run_events(run.pk, run.session_id, 0):
        if event is None:
            yield HEARTBEAT
            continue
        for made in output.feed(event):
            if made["type"] == "response.output_text.delta":
                yield shapes.sse(None, shapes.chunk(run, include_usage, {"content": made["delta"]}))
        if event["type"] in items.ENDS:
            for part in _chat_end(run, event, include_usage):
                yield part
            return


def _chat_end(run: Run, event: dict[str, Any], include_usage: bool) -> list[str]:
    data = event["data"]
    if event["type"] == EventType.RUN_COMPLETED:
        parts = [shapes.sse(None, shapes.chunk(run, include_usage, {}, "stop"))]
        if include_usage:
            parts.append(shapes.sse(None, shapes.usage_chunk(run, data["usage"])))
        return [*parts, DONE]
    status = data.get("status", RunStatus.AWAITING_APPROVAL)  # a pause's event names its approvals only
    exc = errors.unfinished(run.pk, status, data.get("error"), data.get("approval_ids", []))
    return [shapes.sse(None, errors.body(exc.status, exc.code, exc.message))]


async def response_events(
    run: Run, after: int = 0, background: bool | None = None, *, follow: bool = True
) -> AsyncIterator[str]:
    """The response's stream from the run's start, or (a resumed run) from its events after
    `after`: the output it already had comes in `response.created`, the rest as events.
    Not following (a run still paused), it completes at once with the response as it is."""
    output = items.Output(run.pk)
    for stored in await web_pool().run(oa_selectors.stored_events, run.pk, after) if after else []:
        output.feed(stored)
    numbers = itertools.count()
    fresh, previous = await web_pool().run(_state, run)
    snapshot = shapes.response(fresh, output.snapshot(), previous=previous, background=background)
    yield _event({"type": "response.created", "response": snapshot}, numbers)
    yield _event({"type": "response.in_progress", "response": {**snapshot, "status": "in_progress"}}, numbers)
    async for event in run_events(run.pk, run.session_id, after) if follow else _nothing():
        if event is None:
            yield HEARTBEAT
            continue
        for part in output.feed(event):
            yield _event(part, numbers)
        if event["type"] in items.ENDS:
            break
    fresh, _ = await web_pool().run(_state, run)
    final = shapes.response(fresh, output.snapshot(), previous=previous, background=background)
    kind = "response.failed" if final["status"] in ("failed", "cancelled") else "response.completed"
    yield _event({"type": kind, "response": final}, numbers)


async def _nothing() -> AsyncIterator[dict[str, Any] | None]:
    return
    yield


def _state(run: Run) -> tuple[Run, Any]:
    return oa_selectors.fresh_run(run), oa_selectors.previous_run(run)


def _event(data: dict[str, Any], numbers: itertools.count[int]) -> str:
    return shapes.sse(data["type"], {**data, "sequence_number": next(numbers)})
