"""The span processor that feeds the span store, off the request path.

`on_end` only appends the finished span to a bounded buffer; a background thread turns
batches into rows and hands them to `write` (ClickHouse, or the Redis route to it). When
`write` fails the batch is kept and retried with backoff, up to `max_buffer` spans in all;
beyond that new spans are dropped, counted, and logged (at most every LOG_EVERY seconds).

Fork-safe: the thread and the buffer belong to the process that created them. A forked
child (a prefork Celery worker) starts empty, with its own thread on its first span.

`on_start` copies the run a span belongs to (see `spans.agent_run`) onto every span started
inside it, whoever creates it: the SDK's model spans, the context fetches, your own spans;
and marks spans nested in a model call's span (the anthropic SDK's own span of the same
call), whose token counts are then not summed again.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from agentplatform.sdk import attributes as attr
from tracing import rows
from tracing.spans import current_run_scope

logger = logging.getLogger(__name__)

LOG_EVERY = 10.0  # seconds between two warnings about dropped spans
MAX_BACKOFF = 30.0

Write = Callable[[bytes, int], None]  # a payload of encoded rows and how many spans it holds


@dataclass
class Stats:
    exported: int = 0
    dropped: int = 0  # buffer full (the store or route unreachable for too long), or refused by the route
    failed_writes: int = 0

    def copy(self) -> Stats:
        return Stats(self.exported, self.dropped, self.failed_writes)


class StoreSpanProcessor(SpanProcessor):
    def __init__(self, write: Write, *, max_buffer: int, batch: int, interval: float) -> None:
        self.write = write
        self.max_buffer = max_buffer
        self.batch = batch
        self.interval = interval
        self.stats = Stats()
        self._reset()

    def _reset(self) -> None:
        """A fresh buffer, lock and (not yet started) thread for this process."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._spans: collections.deque[ReadableSpan] = collections.deque()
        self._pending: list[tuple[bytes, int]] = []  # encoded batches whose write failed
        self._pending_spans = 0
        self._in_flight = 0  # spans taken from the buffer and not yet written or kept
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._unlogged_drops = 0
        self._logged_at = 0.0
        self._failures = 0

    def after_fork(self) -> None:
        """In a forked child: forget the parent's spans and thread (the parent exports them)."""
        self._reset()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = current_run_scope()
        if scope:
            span.set_attributes(scope)
        parent_attributes = getattr(trace.get_current_span(parent_context), "attributes", None) or {}
        if parent_attributes.get(attr.GEN_AI_OPERATION) == attr.OPERATION_CHAT:
            # Inside a model call's span (a provider SDK's own span of the same call, say):
            # its token counts are the outer span's, and must not be summed twice.
            span.set_attribute(attr.MODEL_CALL_NESTED, True)

    def on_end(self, span: ReadableSpan) -> None:
        if self._pid != os.getpid():
            self.after_fork()
        if self._closed:
            return
        with self._lock:
            if self._held() >= self.max_buffer:
                self._dropped(1)
                return
            self._spans.append(span)
            full = len(self._spans) >= self.batch
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="agentplatform-spans", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def _dropped(self, count: int) -> None:
        self.stats.dropped += count
        self._unlogged_drops += count

    def _loop(self) -> None:
        while not self._closed:
            delay = min(self.interval * 2**self._failures, MAX_BACKOFF) if self._failures else self.interval
            self._wake.wait(delay)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        """Write everything buffered now; False if some of it could not be written (it stays).

        A batch is encoded while the previous one is being written (by the writer thread:
        the store's client releases the GIL while it sends or inserts)."""
        with self._flushing, suppress_instrumentation():
            ok = self._retry_pending()
            writing: tuple[Future[bool], bytes, int] | None = None
            while ok and self._spans:
                spans = self._take()
                payload, count = rows.encode(spans), len(spans)
                if writing is not None:
                    ok, writing = self._settled(*writing), None
                if not ok:
                    self._keep(payload, count)
                    break
                writing = (self._submit(payload, count), payload, count)
            if writing is not None:
                ok = self._settled(*writing) and ok
            self._log_drops()
            return ok and not self._spans

    def _submit(self, payload: bytes, count: int) -> Future[bool]:
        """The write, on the writer thread; in this thread once the interpreter is exiting
        (the provider's atexit shutdown flushes then, and no executor takes work any more)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentplatform-span-writer")
        try:
            return self._executor.submit(self._write, payload, count)
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            written: Future[bool] = Future()
            written.set_result(self._write(payload, count))
            return written

    def _held(self) -> int:
        """Spans this process holds (buffered, being written, or waiting to be retried): the
        bound applies to all of them (`on_end` reads it under the lock)."""
        return len(self._spans) + self._in_flight + self._pending_spans

    def _settled(self, written: Future[bool], payload: bytes, count: int) -> bool:
        if written.result():
            with self._lock:
                self._in_flight -= count
            return True
        self._keep(payload, count)
        return False

    def _take(self) -> list[ReadableSpan]:
        with self._lock:
            spans = [self._spans.popleft() for _ in range(min(self.batch, len(self._spans)))]
            self._in_flight += len(spans)
            return spans

    def _keep(self, payload: bytes, count: int) -> None:
        """A batch taken from the buffer that could not be written: retried first, next time."""
        with self._lock:
            self._in_flight -= count
            self._pending.append((payload, count))
            self._pending_spans += count

    def _retry_pending(self) -> bool:
        while self._pending:
            payload, count = self._pending[0]
            if not self._write(payload, count):
                return False
            with self._lock:
                self._pending.pop(0)
                self._pending_spans -= count
        return True

    def _write(self, payload: bytes, count: int) -> bool:
        try:
            self.write(payload, count)
        except Exception as exc:  # noqa: BLE001  # whatever the store or route raised: keep the batch, retry
            self.stats.failed_writes += 1
            self._failures += 1
            if self._failures == 1:
                logger.warning("span export failed (%s: %s); retrying with backoff", type(exc).__name__, exc)
            return False
        self.stats.exported += count
        self._failures = 0
        return True

    def _log_drops(self) -> None:
        now = time.monotonic()
        if self._unlogged_drops and now - self._logged_at >= LOG_EVERY:
            logger.warning(
                "dropped %d spans: the span buffer is full (%d spans waiting for the store); %d dropped in all",
                self._unlogged_drops,
                self._held(),
                self.stats.dropped,
            )
            self._unlogged_drops, self._logged_at = 0, now

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        while not self.flush():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def shutdown(self) -> None:
        if self._closed:
            return
        self.force_flush(5_000)
        self._closed = True
        self._wake.set()
        if self._executor is not None and self._pid == os.getpid():
            self._executor.shutdown(wait=True)
