"""Celery's Redis transport (kombu's), keeping one redis-py client per channel.

kombu builds a new `redis.Redis` for every command it sends on a channel (publishing a
task, recording a delivered message as unacknowledged, acknowledging it), and redis-py
8's client is costly to build: about 6% of a worker's CPU at 60 runs/s went there. One
client over the channel's connection pool does the same (a client takes a connection
from the pool for each command, so it serves every thread), and is made again should the
channel replace its pool. Selected in settings for `redis://` and `rediss://` brokers.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):
    Channel = Channel
