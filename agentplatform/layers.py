"""The Channels layer (Redis): live fan-out of run events to streaming clients.

Two pieces: a layer whose Redis pool waits for a connection rather than failing under a
burst of connects and disconnects (redis-py's async pool raises MaxConnectionsError), and
a publisher for sync code (workers) that keeps one event loop and its connections for
the life of the process, so publishing costs a queue put, not a new loop per message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from typing import Any

import redis.asyncio
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 200


class ChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> redis.asyncio.ConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address")
        return redis.asyncio.BlockingConnectionPool.from_url(
            address, max_connections=MAX_CONNECTIONS, timeout=10, **host
        )


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
            group, message = self._queue.get()
            try:
                loop.run_until_complete(layer.group_send(group, message))
            except Exception:  # a lost live message is recovered from the database by readers
                logger.warning("could not publish to %s", group, exc_info=True)


@functools.cache
def publisher() -> Publisher:
    """This process's publisher, started on first use (so never before a fork)."""
    return Publisher()
