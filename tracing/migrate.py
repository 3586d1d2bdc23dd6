"""Applies the span store's numbered migrations (tracing/clickhouse_migrations) once each.

Applied names are recorded in `clickhouse_migrations`; running it again applies only what
is new, and then sets the retention (TTL) of the span tables to the configured number of
days if it differs (AGENTPLATFORM_TRACE_RETENTION_DAYS; 0 removes the TTL: spans are kept).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

from tracing import clickhouse_migrations, store
from tracing.conf import tracing_settings

MIGRATIONS_TABLE = "clickhouse_migrations"
RETAINED = {"spans": "toDateTime(start_time)", "traces": "hour"}  # table: its TTL's time expression
_NAME = re.compile(r"^\d{4}_\w+$")


@dataclass(frozen=True)
class Migration:
    name: str
    operations: tuple[str, ...]


def migrations() -> list[Migration]:
    names = sorted(m.name for m in pkgutil.iter_modules(clickhouse_migrations.__path__) if _NAME.match(m.name))
    found = []
    for name in names:
        module = importlib.import_module(f"{clickhouse_migrations.__name__}.{name}")
        found.append(Migration(name, tuple(module.OPERATIONS)))
    return found


def applied() -> set[str]:
    result = store.run_read(f"SELECT name FROM {MIGRATIONS_TABLE}", {})  # noqa: S608  # a constant
    return {str(row[0]) for row in result.rows}


def apply() -> list[str]:
    """Apply what is not applied yet; the names applied now."""
    store.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY name"
    )
    done = applied()
    new = []
    for migration in migrations():
        if migration.name in done:
            continue
        for operation in migration.operations:
            store.command(operation)
        store.command(f"INSERT INTO {MIGRATIONS_TABLE} (name) SELECT {{name:String}}", {"name": migration.name})
        new.append(migration.name)
    set_retention(tracing_settings().RETENTION_DAYS)
    return new


def set_retention(days: int) -> list[str]:
    """Make each span table keep `days` days (0: forever, no TTL); the tables changed."""
    changed = []
    for table, column in RETAINED.items():
        definition = store.run_read(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {table:String}",
            {"table": table},
        )
        if not definition.rows or _ttl_days(str(definition.rows[0][0])) == days:
            continue
        if days:
            store.command(f"ALTER TABLE {table} MODIFY TTL {column} + INTERVAL {int(days)} DAY")
        else:
            store.command(f"ALTER TABLE {table} REMOVE TTL")
        changed.append(table)
    return changed


_TTL = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)")


def _ttl_days(create_query: str) -> int:
    """The days a table's TTL keeps (its `CREATE TABLE` as ClickHouse shows it); 0 without one."""
    found = _TTL.search(create_query)
    return int(found.group(1)) if found else 0
