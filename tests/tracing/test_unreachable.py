"""With ClickHouse unreachable the platform keeps working: spans wait in a bounded buffer,
those beyond it are dropped, counted and logged, and the buffered ones are written once
the store is back."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from tests.fakes.llm_server import Call, Text, ToolCalls
from tracing import selectors
from tracing.conf import tracing_settings

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens


@pytest.fixture
def small_buffer(traced):
    processor = traced.processor
    before = processor.max_buffer
    processor.max_buffer = 4
    yield processor
    processor.max_buffer = before


def test_runs_complete_while_clickhouse_is_unreachable_and_drops_are_counted(
    tracing_on, small_buffer, api, llm, caplog
):
    caplog.set_level(logging.WARNING, logger="tracing.processor")
    stats_before = small_buffer.stats.copy()
    llm.enqueue(ToolCalls([Call("add", {"a": 2, "b": 3})]), Text("5"))

    # Given ClickHouse is unreachable
    with override_settings(TRACING={**tracing_settings().__dict__, "CLICKHOUSE_URL": UNREACHABLE}):
        # When a run executes (7 spans: request, task, queue wait, run, 2 model calls, tool call)
        status, run = api.post("/api/v1/agents/oai/runs/", {"input": "2+3?"})
        assert not small_buffer.force_flush(500)  # nothing can be written

        # Then the run completes all the same
        assert (status, run["status"], run["output"]) == (201, "completed", "5")
        # and what the buffer cannot hold is dropped, counted and logged
        dropped = small_buffer.stats.dropped - stats_before.dropped
        assert dropped >= 3
        assert small_buffer.stats.failed_writes > stats_before.failed_writes
        assert any("dropped" in r.getMessage() and "span buffer is full" in r.getMessage() for r in caplog.records)
        assert any("span export failed" in r.getMessage() for r in caplog.records)

    # And once the store is back, the buffered spans are written
    tracing_on.flush()
    [summary] = selectors.run_traces(run["id"], owner=None)
    assert 0 < summary.span_count <= 4
