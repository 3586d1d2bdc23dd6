"""Span retention: a TTL on the span tables, set from AGENTPLATFORM_TRACE_RETENTION_DAYS by the
migrations, and what ClickHouse (chDB here) does with it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from tracing import migrate, store
from tracing.conf import tracing_settings

DAY_NS = 86_400 * 10**9


@pytest.fixture
def spans(span_store: Path) -> Iterator[None]:
    """Empty span tables; the configured retention again afterwards."""
    for table in ("spans", "traces"):
        store.command(f"TRUNCATE TABLE {table}")
    yield
    migrate.set_retention(tracing_settings().RETENTION_DAYS)
    for table in ("spans", "traces"):
        store.command(f"TRUNCATE TABLE {table}")


def _insert(trace_id: str, days_ago: float) -> int:
    """One span (and so one trace) that started `days_ago` days ago; its start (ns)."""
    start = time.time_ns() - int(days_ago * DAY_NS)
    store.command(
        "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, status_code, status_message,"
        " attributes, events, links, start_ns, end_ns)"
        " SELECT {t:String}, 'a1', '', 'agent.run', 'internal', 'agentplatform', 'ok', '', '{}', '[]', '[]',"
        " {start:Int64}, {end:Int64}",
        {"t": trace_id, "start": start, "end": start + 1000},
    )
    return start


def _kept(table: str) -> list[str]:
    """The traces a table holds (spans, or the trace list's rows)."""
    return [str(row[0]) for row in store.run_read(f"SELECT DISTINCT trace_id FROM {table} ORDER BY 1", {}).rows]


def _definition(table: str) -> str:
    result = store.run_read(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    )
    return str(result.rows[0][0])


def test_lowering_the_retention_drops_what_is_now_too_old_at_once(spans, settings):
    # Given spans of 10 and 3 days ago and of today, kept 30 days
    migrate.set_retention(30)
    for trace_id, days in (("ten-days", 10), ("three-days", 3), ("today", 0)):
        _insert(trace_id, days)
    assert _kept("spans") == _kept("traces") == ["ten-days", "three-days", "today"]

    # When the retention is set to 7 days and the migrations run (as on a deploy)
    settings.TRACING = {**settings.TRACING, "RETENTION_DAYS": 7}
    call_command("migrate_clickhouse", verbosity=0)

    # Then the TTL says so, and the older spans and traces are gone, from both tables
    assert "TTL toDateTime(start_time) + toIntervalDay(7)" in _definition("spans")
    assert "TTL hour + toIntervalDay(7)" in _definition("traces")
    assert _kept("spans") == _kept("traces") == ["three-days", "today"]


def test_each_days_spans_carry_the_time_clickhouse_drops_them(spans):
    # Given a retention of 7 days
    migrate.set_retention(7)

    # When a span of 3 days ago is written
    started = _insert("three-days", 3)

    # Then its part (one per day) records its deadline: the span's start plus 7 days. ClickHouse's
    # background merges drop a part once past it (ttl_only_drop_parts: whole days, no rewrite)
    parts = store.run_read(
        "SELECT partition, toUnixTimestamp(delete_ttl_info_max) FROM system.parts"
        " WHERE database = currentDatabase() AND table = 'spans' AND active",
        {},
    ).rows
    seconds = started // 10**9
    day = datetime.fromtimestamp(seconds, tz=UTC).date()
    assert [(str(partition), int(deadline)) for partition, deadline in parts] == [(str(day), seconds + 7 * 86_400)]


def test_zero_keeps_spans_forever(spans):
    # When the retention is 0
    assert migrate.set_retention(0) == ["spans", "traces"]

    # Then the tables have no TTL, and an old span is kept
    assert " TTL " not in _definition("spans")
    assert " TTL " not in _definition("traces")
    assert migrate.set_retention(0) == []  # nothing more to change
    _insert("a-year-ago", 365)
    assert _kept("spans") == _kept("traces") == ["a-year-ago"]
