"""Tracing on, against the real ClickHouse engine (chDB) that this test process opens.

The suite keeps tracing off elsewhere (tests/settings.py). Here, for the session: a chDB
directory opened by this process (so its own spans are written directly), migrated, and
our processor installed, flushing every 50 ms. `sink` runs the span sink in a thread, for
spans and queries that come through the Redis route from other processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from tests.conftest import Daphne, serving_daphne
from tests.infra import wait_until
from tracing import migrate, route, selectors, setup, store
from tracing.conf import tracing_settings
from tracing.sink import Sink

TRACING = {"ENABLED": True, "FLUSH_INTERVAL": 0.05}


@pytest.fixture(scope="session")
def span_store(tmp_path_factory: Any) -> Iterator[Path]:
    """The chDB directory of this test session, opened here and migrated."""
    path = tmp_path_factory.mktemp("clickhouse")
    with override_settings(TRACING={**tracing_settings().__dict__, **TRACING, "CHDB_PATH": str(path)}):
        store.open_embedded(path)
        migrate.apply()
        yield path
        store.close()


@pytest.fixture(scope="session")
def traced(span_store: Path) -> Iterator[setup.Installed]:
    """Tracing installed in this process (the HTTP client's requests, the in-process worker)."""
    installed = setup.install()
    assert installed is not None
    yield installed
    setup.uninstall()


@dataclass(frozen=True)
class Tracing:
    """Tracing in this test process: flush it, and wait for a run's trace to arrive."""

    installed: setup.Installed

    def flush(self) -> None:
        assert self.installed.processor.force_flush(10_000)

    def trace_of(self, run_id: str, names: set[str], timeout: float = 30) -> selectors.Trace:
        """The (first) trace of a run, once it holds spans with all these names."""
        found: list[selectors.Trace] = []

        def arrived() -> bool:
            self.flush()
            summaries = selectors.run_traces(run_id, owner=None)
            if summaries:
                found[:] = [selectors.get_trace(summaries[-1].trace_id, owner=None)]
            return bool(found) and names <= {span.name for span in found[0].spans}

        wait_until(arrived, timeout=timeout)
        return found[0]


@pytest.fixture
def tracing_on(traced: setup.Installed) -> Tracing:
    """Tracing on, and an empty store: the spans of earlier tests are written, then removed."""
    tracing = Tracing(traced)
    tracing.flush()
    for table in ("spans", "traces"):
        store.command(f"TRUNCATE TABLE {table}")
    return tracing


@pytest.fixture
def sink(span_store: Path) -> Iterator[Sink]:
    """The span sink, in a thread: moves routed spans into the store and answers routed queries."""
    route.client().delete(*route.keys().__dict__.values())
    running = Sink(insert_every=0.1)
    thread = threading.Thread(target=running.run, name="test-span-sink", daemon=True)
    thread.start()
    wait_until(route.sink_alive, timeout=10)
    yield running
    running.stop()
    thread.join(timeout=30)
    route.client().delete(route.keys().sink)


@pytest.fixture(scope="session")
def traced_daphne(
    django_db_setup: None, celery_worker: None, span_store: Path, tmp_path_factory: Any
) -> Iterator[Daphne]:
    """A Daphne process with tracing on: it does not open the store, so its spans (and the
    admin's trace queries) go through the Redis route to the sink."""
    log = tmp_path_factory.mktemp("traced-daphne") / "daphne.log"
    with serving_daphne(log, AGENTPLATFORM_TRACING="true", AGENTPLATFORM_TRACE_FLUSH_INTERVAL="0.05") as server:
        yield server
