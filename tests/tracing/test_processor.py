"""The span processor: off the request path, bounded, retrying, counting drops, fork-safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Link, Status, StatusCode

from tracing import rows
from tracing.processor import StoreSpanProcessor

ROOT = Path(__file__).resolve().parents[2]


class Store:
    """A write function that fails while `down`, recording what it was given."""

    def __init__(self) -> None:
        self.down = False
        self.batches: list[int] = []

    def __call__(self, payload: bytes, count: int) -> None:
        if self.down:
            raise ConnectionError("store down")
        assert len(json.loads(b"[" + payload + b"]")) == count
        self.batches.append(count)


def _tracer(processor: StoreSpanProcessor):
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider.get_tracer("test")


def _spans(tracer, count: int) -> None:
    for n in range(count):
        with tracer.start_as_current_span(f"span {n}"):
            pass


def test_spans_are_written_in_batches_by_a_background_thread():
    store = Store()
    processor = StoreSpanProcessor(store, max_buffer=100, batch=4, interval=60)

    _spans(_tracer(processor), 10)
    assert processor.force_flush()

    assert store.batches == [4, 4, 2]
    assert processor.stats.exported == 10


def test_while_the_store_is_down_spans_wait_up_to_the_bound_and_the_rest_are_counted_as_dropped():
    store = Store()
    processor = StoreSpanProcessor(store, max_buffer=5, batch=2, interval=60)
    tracer = _tracer(processor)
    store.down = True

    _spans(tracer, 8)
    assert not processor.flush()

    assert processor.stats.dropped == 3
    assert processor.stats.failed_writes >= 1
    store.down = False
    assert processor.force_flush()
    assert sum(store.batches) == processor.stats.exported == 5


def test_spans_being_written_count_toward_the_bound():
    # Given a write that hangs (a slow store) on a batch taken from a full buffer
    entered, release = threading.Event(), threading.Event()

    def slow_failing_write(payload: bytes, count: int) -> None:
        entered.set()
        release.wait(10)
        raise ConnectionError("store down")

    processor = StoreSpanProcessor(slow_failing_write, max_buffer=4, batch=4, interval=60)
    tracer = _tracer(processor)
    _spans(tracer, 4)
    flushing = threading.Thread(target=processor.flush)
    flushing.start()
    assert entered.wait(10)

    # When more spans end while those four are being written
    _spans(tracer, 3)

    # Then none of them is held beyond the bound: the four in flight still count
    assert processor.stats.dropped == 3
    release.set()
    flushing.join(10)
    assert processor.stats.dropped == 3
    assert processor._held() == 4  # kept for a retry, nothing more


def test_a_forked_child_starts_with_its_own_empty_buffer():
    store = Store()
    processor = StoreSpanProcessor(store, max_buffer=100, batch=100, interval=60)
    tracer = _tracer(processor)
    _spans(tracer, 3)  # buffered in the parent, not yet written
    read, write = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: one span of its own, flushed by its own processor state
        try:
            _spans(tracer, 1)
            processor.force_flush(5_000)
            os.write(write, json.dumps(store.batches).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_batches = json.loads(os.read(read, 1000))
    os.waitpid(pid, 0)
    processor.force_flush()

    assert child_batches == [1]  # the child wrote its span only, not the parent's three
    assert store.batches == [3]


def test_the_fast_row_reads_the_same_span_as_the_public_api():
    # `rows._fast_row` reads the SDK's span fields directly (speed); it must say what the
    # public API says, events, links and status included, or an SDK upgrade changed them.
    spans: list = []

    class Keep(SpanProcessor):
        def on_end(self, span):
            spans.append(span)

    provider = TracerProvider()
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer", attributes={"a": 1, "b": ("x", "y")}) as outer:
        outer.add_event("happened", {"n": 2})
        outer.set_status(Status(StatusCode.ERROR, "broke"))
        with tracer.start_as_current_span("inner", links=[Link(outer.get_span_context())]):
            pass

    for span in spans:
        assert rows._fast_row(span, "svc") == rows.row(span, "svc")
    assert rows.encode(spans).count(b"happened") == 1


EXITING = """
import atexit
from opentelemetry.sdk.trace import TracerProvider
from tracing.processor import StoreSpanProcessor

written = []
atexit.register(lambda: print("written", sum(written)))  # runs after the provider's (last in, first out)
processor = StoreSpanProcessor(lambda payload, count: written.append(count), max_buffer=100, batch=2, interval=60)
provider = TracerProvider()  # shuts its processors down at exit, as in every process of ours
provider.add_span_processor(processor)
tracer = provider.get_tracer("test")
for n in range(3):
    with tracer.start_as_current_span(f"span {n}"):
        pass
processor.flush()  # the writer thread exists, as in a process that has exported before
for n in range(3):
    with tracer.start_as_current_span(f"late {n}"):
        pass
"""


def test_spans_still_buffered_when_the_process_exits_are_written_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-c", EXITING], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )

    assert result.returncode == 0
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout.strip() == "written 6"
