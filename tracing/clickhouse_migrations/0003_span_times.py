"""Span times arrive as nanoseconds: two EPHEMERAL columns (read from the insert, not
stored) from which start_time, end_time and duration_ns are made. The exporter then sends
integers instead of formatting times, one of the costs per span it had in Python.
"""
# ruff: noqa: N999  # numbered like Django's migrations, imported by name

OPERATIONS = [
    "ALTER TABLE spans ADD COLUMN IF NOT EXISTS start_ns Int64 EPHEMERAL",
    "ALTER TABLE spans ADD COLUMN IF NOT EXISTS end_ns Int64 EPHEMERAL",
    "ALTER TABLE spans MODIFY COLUMN start_time DEFAULT fromUnixTimestamp64Nano(start_ns)",
    "ALTER TABLE spans MODIFY COLUMN end_time DEFAULT fromUnixTimestamp64Nano(end_ns)",
    "ALTER TABLE spans MODIFY COLUMN duration_ns DEFAULT toUInt64(greatest(end_ns - start_ns, 0))",
]
