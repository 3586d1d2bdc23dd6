"""The span store's schema: numbered migrations, applied once each, recorded; retention."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tracing import migrate, store


def _tables() -> set[str]:
    result = store.run_read("SELECT name FROM system.tables WHERE database = currentDatabase()", {})
    return {str(row[0]) for row in result.rows}


def _create_query(table: str) -> str:
    result = store.run_read(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    )
    return str(result.rows[0][0])


def test_migrations_are_applied_once_and_recorded(span_store):
    # Given a store the session migrated already
    assert (
        migrate.applied()
        == {m.name for m in migrate.migrations()}
        == {"0001_spans", "0002_traces", "0003_span_times", "0004_part_removal"}
    )

    # When the command runs again, twice
    first, second = io.StringIO(), io.StringIO()
    call_command("migrate_clickhouse", stdout=first)
    call_command("migrate_clickhouse", stdout=second)

    # Then nothing is applied again, and the tables are there
    assert first.getvalue().strip() == second.getvalue().strip() == "No ClickHouse migrations to apply."
    assert {"spans", "traces", "traces_mv", "clickhouse_migrations"} <= _tables()
    recorded = store.run_read("SELECT name, count() FROM clickhouse_migrations GROUP BY name ORDER BY name", {})
    assert recorded.rows == [["0001_spans", 1], ["0002_traces", 1], ["0003_span_times", 1], ["0004_part_removal", 1]]


@pytest.mark.parametrize("table", ["spans", "traces"])
def test_outdated_parts_are_removed_without_a_burst_of_threads(span_store, table):
    # Given the migrated store: the engine reports the table's threshold for concurrent removal
    # (past it, up to 128 threads start, and the embedded engine keeps them all)
    assert "concurrent_part_removal_threshold = 1000000" in _create_query(table)


def test_every_operation_can_run_again_without_harm(span_store):
    # A migration interrupted after some statements is applied again from its start
    for migration in migrate.migrations():
        for operation in migration.operations:
            store.command(operation)

    assert migrate.apply() == []


@pytest.mark.parametrize("days", [7, 30])
def test_retention_follows_the_setting(span_store, days):
    migrate.set_retention(days)

    assert f"toIntervalDay({days})" in _create_query("spans")
    assert f"toIntervalDay({days})" in _create_query("traces")
    assert migrate.set_retention(days) == []  # unchanged: nothing to alter
