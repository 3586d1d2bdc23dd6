"""The traces table: one row per trace (after merges), kept by a materialized view on spans.

The trace list reads it, not the spans: newest first with filters by agent, run status,
owner, run, duration and errors. Spans of one trace arrive in several inserts (the web
process, the worker); each insert adds a partial row and the AggregatingMergeTree merges
those with the same key, the queries finishing the merge with GROUP BY trace_id.

ORDER BY (hour, trace_id): the newest traces are a short range at the end of the key, so the
list reads the last hour, day or week first (partial rows of one trace in two hours stay two
rows, merged by the queries). A trace by id: the bloom filter.
"""
# ruff: noqa: N999  # numbered like Django's migrations, imported by name

OPERATIONS = [
    """
    CREATE TABLE IF NOT EXISTS traces
    (
        hour DateTime('UTC'),
        trace_id String,
        start_time SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
        end_time SimpleAggregateFunction(max, DateTime64(9, 'UTC')),
        span_count SimpleAggregateFunction(sum, UInt64),
        error_count SimpleAggregateFunction(sum, UInt64),
        root_name SimpleAggregateFunction(max, String),
        agents SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
        owners SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
        runs SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
        statuses SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
        input_tokens SimpleAggregateFunction(sum, UInt64),
        output_tokens SimpleAggregateFunction(sum, UInt64),
        INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1
    )
    ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(hour)
    ORDER BY (hour, trace_id)
    TTL hour + INTERVAL 30 DAY
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS traces_mv TO traces AS
    SELECT
        toStartOfHour(min(spans.start_time)) AS hour,
        trace_id,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        count() AS span_count,
        countIf(status_code = 'error') AS error_count,
        maxIf(name, parent_span_id = '' OR kind = 'server') AS root_name,
        groupUniqArrayIf(toString(agent), agent != '') AS agents,
        groupUniqArrayIf(owner_id, owner_id != '') AS owners,
        groupUniqArrayIf(run_id, run_id != '') AS runs,
        groupUniqArrayIf(toString(run_status), run_status != '') AS statuses,
        sumIf(input_tokens, operation = 'chat') AS input_tokens,
        sumIf(output_tokens, operation = 'chat') AS output_tokens
    FROM spans
    GROUP BY trace_id
    """,
]
