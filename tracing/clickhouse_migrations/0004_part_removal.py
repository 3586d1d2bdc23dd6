"""Outdated parts are removed one after another. Past `concurrent_part_removal_threshold` (100)
ClickHouse removes them with up to 128 threads at once, and the embedded engine (chDB) keeps
every thread it has started: the span sink went from 17 threads to about 145 when its first
few hundred small parts were cleaned up, and kept them (bench/sink_memory.py)."""
# ruff: noqa: N999  # numbered like Django's migrations, imported by name

SEQUENTIAL = 1_000_000  # outdated parts before removal goes concurrent: never, at our sizes

OPERATIONS = [
    f"ALTER TABLE {table} MODIFY SETTING concurrent_part_removal_threshold = {SEQUENTIAL}"
    for table in ("spans", "traces")
]
