"""The span store's schema, as numbered migrations (`NNNN_name.py`, each with `OPERATIONS`).

Applied in order, each once, by `manage.py migrate_clickhouse` (see `tracing.migrate`).
Statements are idempotent on their own too (IF NOT EXISTS), so a migration interrupted
half-way is simply applied again.
"""
