"""Following a run's events: replay from the durable record, then live from the Channels layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from agentplatform.api.sse import HEARTBEAT
from agents import events, selectors
from agents.models import ACTIVE_RUN_STATUSES

HEARTBEAT_SECONDS = 15.0


def _stored(run_id: UUID, after: int) -> tuple[list[dict[str, Any]], bool]:
    """Stored events after `after`, and whether the run has ended."""
    try:
        rows, status = selectors.run_events_after(run_id, after)
        return [events.payload(row) for row in rows], status not in ACTIVE_RUN_STATUSES
    finally:
        connection.close()  # a long-lived stream holds no database connection while it waits


class _Follower:
    """Yields each event once, in order, and knows when the run's last one has passed."""

    def __init__(self, run_id: UUID, after: int) -> None:
        self.run_id, self.last, self.done = run_id, after, False

    def take(self, batch: list[dict[str, Any]]) -> list[str]:
        out = []
        for event in batch:
            if self.done or event["run_id"] != str(self.run_id) or event["seq"] <= self.last:
                continue
            out.append(events.as_sse(event))
            self.last = event["seq"]
            self.done = events.is_final(event["type"])
        return out

    def gap(self, batch: list[dict[str, Any]]) -> bool:
        mine = [e["seq"] for e in batch if e["run_id"] == str(self.run_id)]
        return bool(mine) and min(mine) > self.last + 1


async def follow_run(run_id: UUID, session_id: UUID, after: int) -> AsyncIterator[str]:
    """Events with seq > `after`, in order and once each, ending with the run's final event.

    It subscribes first, then replays what is stored: an event committed after the replay
    arrives live, and one the layer lost is read back from the database (on a gap in the
    sequence, or at each heartbeat).
    """
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = events.session_group(session_id)
    await layer.group_add(group, channel)
    follower = _Follower(run_id, after)
    try:
        while True:  # replay, a page at a time, until the store has nothing newer
            stored, ended = await sync_to_async(_stored)(run_id, follower.last)
            for chunk in follower.take(stored):
                yield chunk
            if follower.done or not stored:
                break
        while not follower.done and not ended:
            try:
                message = await asyncio.wait_for(layer.receive(channel), HEARTBEAT_SECONDS)
                batch = message.get("events", [])
                if follower.gap(batch):
                    batch, _ = await sync_to_async(_stored)(run_id, follower.last)
            except TimeoutError:
                batch, ended = await sync_to_async(_stored)(run_id, follower.last)
                if not batch:
                    yield HEARTBEAT
            for chunk in follower.take(batch):
                yield chunk
    finally:
        await layer.group_discard(group, channel)
