"""Publishing to the Channels layer from sync code (workers).

The layer is channels-redis's pub/sub layer: a group message is one PUBLISH, and each
process keeps one connection per event loop (no pool to exhaust under bursts). Live
delivery is best effort by design; readers replay from the database.

The publisher keeps one event loop (and so one connection) for the life of the process:
publishing from a run costs a queue put, not a new loop per message, and what the runs of a
busy worker publish meanwhile goes out in one turn of that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class Publisher:
    """Sends group messages from any thread through one background event loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="channel-publisher", daemon=True)
        self._thread.start()

    def publish(self, group: str, message: dict[str, Any]) -> None:
        self._queue.put((group, message))

    def _run(self) -> None:
        # One loop for the thread's life (the layer keeps its Redis connections per loop);
        # a daemon thread blocked on the queue never holds up the process's exit.
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < MAX_BATCH:
                    batch.append(self._queue.get_nowait())
            loop.run_until_complete(self._send(layer, batch))

    @staticmethod
    async def _send(layer: Any, batch: list[tuple[str, dict[str, Any]]]) -> None:
        for group, message in batch:  # in order: a group's messages arrive as they were published
            try:
                await layer.group_send(group, message)
            except Exception:  # a lost live message is recovered from the database by readers
                logger.warning("could not publish to %s", group, exc_info=True)


MAX_BATCH = 256


@functools.cache
def publisher() -> Publisher:
    """This process's publisher, started on first use (so never before a fork)."""
    return Publisher()
