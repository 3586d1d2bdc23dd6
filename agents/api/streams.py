"""Following events: replay from the durable record, then live from the Channels layer.

Two followers share one rule (`Cursor`): an event is delivered once, in its run's order.
Each follower subscribes before it replays, so an event committed after the replay arrives
live; an event the layer lost is read back from the database, on a gap in a run's sequence
or at each heartbeat while a followed run is still active.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

from agentplatform.api.sse import HEARTBEAT
from agentplatform.pools import web_pool
from agents import events, selectors
from agents.models import ACTIVE_RUN_STATUSES

HEARTBEAT_SECONDS = 15.0
REPLAY_PAGE = 500  # stored events read at once

EventPayload = dict[str, Any]


class Cursor:
    """The last sequence number delivered for each run; runs whose final event has passed."""

    def __init__(self, last: dict[str, int] | None = None) -> None:
        self.last: dict[str, int] = dict(last or {})
        self.ended: set[str] = set()

    def take(self, batch: Iterable[EventPayload]) -> tuple[list[EventPayload], bool]:
        """The events of `batch` that come next, in order; and whether one skipped ahead (a gap)."""
        out, gap = [], False
        for event in batch:
            run, seq = event["run_id"], event["seq"]
            last = self.last.get(run, 0)
            if run in self.ended or seq <= last:
                continue
            if seq > last + 1:
                gap = True
                continue
            out.append(event)
            self.last[run] = seq
            if events.is_final(event["type"]):
                self.ended.add(run)
        return out, gap

    def following(self) -> list[str]:
        return [run for run in self.last if run not in self.ended]


def _closing(function: Any) -> Any:
    """`function` off the event loop, on the web pool, giving its connection back after: a
    long-lived stream holds no thread and no database connection while it waits."""

    async def call(*args: Any) -> Any:
        return await web_pool().run(function, *args)

    return call


def _stored_run(run_id: UUID, after: int) -> tuple[list[EventPayload], bool, bool]:
    """Stored events of a run after `after` (a page); whether the run has ended; whether
    the page was full (more may follow it)."""
    rows, status = selectors.run_events_after(run_id, after, REPLAY_PAGE)
    return [events.payload(row) for row in rows], status not in ACTIVE_RUN_STATUSES, len(rows) == REPLAY_PAGE


def _stored_session(session_id: UUID, since: datetime, cursor: Cursor) -> list[EventPayload]:
    rows = selectors.session_events_after(session_id, since, cursor.last, exclude=cursor.ended)
    return [events.payload(row) for row in rows]


stored_run = _closing(_stored_run)
stored_session = _closing(_stored_session)


async def follow_run(run_id: UUID, session_id: UUID, after: int) -> AsyncIterator[str]:
    """A run's events with seq > `after` as SSE, in order and once each, ending with its final event."""
    async with contextlib.aclosing(run_events(run_id, session_id, after)) as followed:
        async for event in followed:
            yield HEARTBEAT if event is None else events.as_sse(event)


async def run_events(run_id: UUID, session_id: UUID, after: int) -> AsyncGenerator[EventPayload | None, None]:
    """A run's events with seq > `after`, in order and once each, ending with its final event;
    None while the run is quiet, once per HEARTBEAT_SECONDS (a stream's keep-alive)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = events.session_group(session_id)
    await layer.group_add(group, channel)
    cursor, run = Cursor({str(run_id): after}), str(run_id)
    try:
        replay, idle = True, False  # first, what was stored before the subscription
        while run not in cursor.ended:
            if replay:
                stored, ended, full = await stored_run(run_id, cursor.last[run])
                found, _ = cursor.take(stored)
                for event in found:
                    yield event
                if full:
                    continue  # the next page (what was stored after this one arrives live)
                if ended:
                    break
                if idle and not found:
                    yield None
            try:
                message = await asyncio.wait_for(layer.receive(channel), HEARTBEAT_SECONDS)
            except TimeoutError:
                replay, idle = True, True
                continue
            found, replay = cursor.take(e for e in message.get("events", []) if e["run_id"] == run)
            idle = False
            for event in found:
                yield event
    finally:
        await layer.group_discard(group, channel)
        await release_channel(layer, channel)


async def release_channel(layer: Any, channel: str) -> None:
    """Forget a follower's (or a consumer's) channel and unsubscribe it from Redis. channels-redis's pub/sub layer
    does this only when a `receive()` on the channel is cancelled (it has no `delete_channel()`),
    so a follower that ends any other way (its run's final event; a client gone while it was
    replaying or writing) would leave a subscription, and a queue in this process, behind."""
    if isinstance(layer, RedisPubSubChannelLayer) and layer.channels.pop(channel, None) is not None:
        await layer._get_shard(channel).unsubscribe(channel)
