"""Following a run's events: replay from the durable record, then new ones as they land."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import UUID

from asgiref.sync import sync_to_async
from django.db import connection

from agentplatform.api.sse import HEARTBEAT
from agents import events, selectors
from agents.models import ACTIVE_RUN_STATUSES, RunEvent

POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 15.0


def _poll(run_id: UUID, after: int) -> tuple[list[RunEvent], str]:
    try:
        return selectors.run_events_after(run_id, after)
    finally:
        connection.close()  # a long-lived stream holds no database connection between polls


async def follow_run(run_id: UUID, after: int) -> AsyncIterator[str]:
    """Events with seq > `after`, in order, ending with the run's final event.

    Runs execute in the request today, so a client mostly replays a finished run; a run
    still going is polled until its final event, with heartbeats while it is quiet.
    """
    last, quiet = after, 0.0
    while True:
        batch, status = await sync_to_async(_poll)(run_id, last)
        for event in batch:
            yield events.as_sse(event)
            last = event.seq
            if events.is_final(event.type):
                return
        if not batch and status not in ACTIVE_RUN_STATUSES:
            return  # the client already has the whole run
        await asyncio.sleep(POLL_SECONDS)
        quiet = 0.0 if batch else quiet + POLL_SECONDS
        if quiet >= HEARTBEAT_SECONDS:
            yield HEARTBEAT
            quiet = 0.0
