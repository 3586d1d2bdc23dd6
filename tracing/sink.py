"""The span sink: the one process of the embedded topology that opens the span store.

It moves spans from the Redis route into the store in batches (every export waiting, every
SINK_INTERVAL seconds, or at once when INSERT_SPANS wait: a trace shows in the viewer a
few seconds after it ends), and answers the trace queries that the web processes send
through the route. Queries are served between inserts: a backlog delays them by one insert.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from tracing import route, store
from tracing.errors import StoreUnavailable

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 3.0
# An insert costs about 15 ms of CPU whatever its size, then about 10 µs a span: few large
# inserts (and fewer parts to merge) keep the sink's share of the machine small.
INSERT_SPANS = 50_000  # insert before SINK_INTERVAL is up once this many spans wait
IDLE_WAIT = 0.2  # seconds waiting for a query between checks for spans
MAX_ELEMENTS = 500  # exports per insert
MAX_BYTES = 64 * 1024 * 1024  # and at most this much JSON per insert


@dataclass
class SinkStats:
    inserted: int = 0
    dropped: int = 0  # spans the store refused (a malformed payload): logged
    queries: int = 0


class Sink:
    def __init__(self, *, insert_every: float, max_elements: int = MAX_ELEMENTS) -> None:
        self.max_elements = max_elements
        self.insert_every = insert_every
        self.stopping = False
        self.stats = SinkStats()
        self._beat_at = self._inserted_at = 0.0

    def run(self) -> None:
        """Until `stop()`; then what is still waiting in the route is moved before returning."""
        while not self.stopping:
            try:
                self.step()
            except redis.RedisError as exc:
                logger.warning("span sink: Redis failed (%s); retrying", exc)
                time.sleep(1)
        self.drain_all(deadline=time.monotonic() + 10)

    def stop(self) -> None:
        self.stopping = True

    def step(self) -> None:
        now = time.monotonic()
        if now - self._beat_at >= HEARTBEAT_EVERY:
            route.heartbeat()
            self._beat_at = now
        moved = 0
        if now - self._inserted_at >= self.insert_every or route.waiting() >= INSERT_SPANS:
            moved = self.drain()
            self._inserted_at = now
        self.serve(wait=0 if moved else IDLE_WAIT)

    def drain(self) -> int:
        """Move one batch of exports from the route into the store; the spans moved."""
        batch = route.take(self.max_elements, MAX_BYTES)
        if not batch.elements:
            return 0
        try:
            store.insert_payloads(batch.payloads)
        except StoreUnavailable:
            self._insert_one_by_one(batch.payloads)
        else:
            self.stats.inserted += batch.spans
        route.ack(batch)
        return batch.spans

    def _insert_one_by_one(self, payloads: list[bytes]) -> None:
        """A batch the store refused: insert its exports separately, dropping those it refuses."""
        for payload in payloads:
            try:
                store.insert_payloads([payload])
            except StoreUnavailable as exc:
                self.stats.dropped += 1
                logger.error("span sink: dropped an export the store refused (%d bytes): %s", len(payload), exc)

    def drain_all(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline and self.drain():
                pass
        except redis.RedisError as exc:
            logger.warning("span sink: stopping without draining the route (Redis failed: %s)", exc)

    def serve(self, wait: float) -> int:
        """Answer the waiting queries (waiting up to `wait` seconds for one)."""
        requests = route.next_queries(wait)
        for request in requests:
            try:
                result = store.run_read(request["sql"], request["parameters"])
            except (StoreUnavailable, ValueError) as exc:
                route.answer(request["id"], {"error": str(exc)})
            else:
                route.answer(request["id"], {"columns": list(result.columns), "rows": result.rows})
            self.stats.queries += 1
        return len(requests)
