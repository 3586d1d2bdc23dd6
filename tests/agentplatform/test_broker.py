"""Celery's broker connection: kombu's Redis transport, with one redis-py client per channel."""

from __future__ import annotations

import uuid

from agentplatform.broker import Transport
from agentplatform.celery import app


def test_messages_go_through_the_broker_on_one_client_per_channel_until_its_pool_changes():
    with app.connection_for_write() as connection:
        # Given the platform's broker connection (a real Redis)
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        name = f"test-broker-{uuid.uuid4()}"
        queue = connection.SimpleQueue(name)
        client = channel._create_client()

        # When a message is published, received and acknowledged (each a command or a
        # pipeline on the channel: the put, the unacknowledged record, the ack)
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        message.ack()

        # Then it went through, nothing is left waiting or unacknowledged, and every
        # command used the same client
        assert message.payload == {"n": 1}
        assert channel.client.llen(name) == 0
        assert channel.client.hlen(channel.unacked_key) == 0
        assert channel._create_client() is client
        # And a channel whose pool is replaced (it reconnected) builds a client on the new one
        channel._pool = None
        fresh = channel._create_client()
        assert fresh is not client
        assert fresh.connection_pool is channel.pool
        queue.close()
