"""The span sink: the one process of the embedded topology that opens the span store.

It moves spans from the Redis route into the store in batches (every export waiting, every
SINK_INTERVAL seconds, or at once when INSERT_SPANS wait: a trace shows in the viewer a
few seconds after it ends), and answers the trace queries that the web processes send
through the route. Queries are served between inserts: a backlog delays them by one insert.

The engine (chDB) holds about 300 MiB once loaded, so the sink opens the store only when
there is something to insert or a query to answer, and once it has had nothing to do for
SINK_IDLE_SECONDS it closes the store and restarts its process (exec: same pid) without it.
A query that finds the store closed waits the second it takes to open.
`up` runs it as `python -m tracing.sink`: it reads the settings but loads no Django app.
"""

from __future__ import annotations

import enum
import logging
import logging.config
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import redis
from django.conf import settings

from tracing import migrate, route, store
from tracing.conf import tracing_settings
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


class Ended(enum.Enum):
    STOPPED = "stopped"  # by `stop()`, the route drained
    IDLE = "idle"  # the store it opened had nothing to do for `idle_after` seconds


class Sink:
    def __init__(
        self,
        *,
        insert_every: float,
        max_elements: int = MAX_ELEMENTS,
        open_store: Callable[[], None] | None = None,
        idle_after: float | None = None,
    ) -> None:
        """`open_store` opens the store in this process when there is work (None: it is open
        already); once the store it opened has been idle `idle_after` seconds, `run` returns."""
        self.max_elements = max_elements
        self.insert_every = insert_every
        self.open_store = open_store
        self.idle_after = idle_after
        self.stopping = False
        self.stats = SinkStats()
        self._beat_at = self._inserted_at = self._used_at = 0.0
        self._opened = False

    def run(self) -> Ended:
        """Until `stop()` (then what is still waiting in the route is moved before returning),
        or until the store it opened has been idle for `idle_after` seconds."""
        while not self.stopping:
            try:
                self.step()
            except redis.RedisError as exc:
                logger.warning("span sink: Redis failed (%s); retrying", exc)
                time.sleep(1)
            if self._idle():
                return Ended.IDLE
        self.drain_all(deadline=time.monotonic() + 10)
        return Ended.STOPPED

    def _idle(self) -> bool:
        return self.idle_after is not None and self._opened and time.monotonic() - self._used_at >= self.idle_after

    def _store(self) -> None:
        """Open the store, if it is ours to open and not open yet."""
        if self.open_store is not None and not store.is_local():
            self.open_store()
            self._opened = True
        self._used_at = time.monotonic()

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
        self._store()
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
        if requests:
            self._store()
        for request in requests:
            try:
                result = store.run_read(request["sql"], request["parameters"])
            except (StoreUnavailable, ValueError) as exc:
                route.answer(request["id"], {"error": str(exc)})
            else:
                route.answer(request["id"], {"columns": list(result.columns), "rows": result.rows})
            self.stats.queries += 1
        return len(requests)


def open_and_migrate() -> None:
    """Open the embedded store in this process and apply what is new of its migrations."""
    store.open_embedded()
    applied = migrate.apply()
    if applied:
        logger.info("span sink: applied %s", ", ".join(applied))
    logger.info("span sink: serving %s", store.embedded_path())


def serve() -> None:
    """The span sink's process, until SIGTERM or Ctrl-C. When its store has been idle, it
    closes it and runs its own command again (exec), so that the engine's memory is freed."""
    if store.is_local():
        raise StoreUnavailable("CLICKHOUSE_URL is set: every process writes to ClickHouse itself; no sink is needed.")
    conf = tracing_settings()
    if not conf.SINK_IDLE_SECONDS:  # 0: the store stays open, from the start, as long as the sink runs
        open_and_migrate()
    sink = Sink(insert_every=conf.SINK_INTERVAL, open_store=open_and_migrate, idle_after=conf.SINK_IDLE_SECONDS or None)

    def stop(signum: int, frame: FrameType | None) -> None:
        sink.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    try:
        ended = sink.run()
    finally:
        store.close()
    if ended is Ended.IDLE:
        logger.info(
            "span sink: idle for %gs; the store is closed until spans or a query arrive", conf.SINK_IDLE_SECONDS
        )
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.execv(sys.executable, sys.orig_argv)  # noqa: S606  # this very command, with a fresh process image


def main() -> None:
    """`python -m tracing.sink`: the settings and logging, but no app registry (no models,
    no admin, no API): the sink needs none, and a Django process costs 100 MiB more."""
    logging.config.dictConfig(settings.LOGGING)
    serve()


if __name__ == "__main__":
    main()
