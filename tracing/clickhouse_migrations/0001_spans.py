"""The spans table: one row per span, ordered for the lookups the viewer and metrics make.

- ORDER BY (name, agent, start_time): metrics read one kind of span (agent.run, tool.call,
  ...) for an agent or all agents over a time range: a contiguous range of the key.
- A trace's spans are found by trace_id, within the trace's time bounds (from the traces
  table, 0002) so that only the days it covers are read, then through a bloom filter.
- A run's spans: the bloom filter on run_id.
- Daily partitions, so that retention drops whole parts (the TTL is set from
  AGENTPLATFORM_TRACE_RETENTION_DAYS by every `migrate_clickhouse`).
- Names and other repeated values are LowCardinality; the heavy payloads (all attributes,
  events, links as JSON) are in their own compressed columns, read only for a trace's detail.
"""
# ruff: noqa: N999  # numbered like Django's migrations, imported by name

OPERATIONS = [
    """
    CREATE TABLE IF NOT EXISTS spans
    (
        trace_id String CODEC(ZSTD(1)),
        span_id String CODEC(ZSTD(1)),
        parent_span_id String CODEC(ZSTD(1)),
        name LowCardinality(String),
        kind LowCardinality(String),
        service LowCardinality(String),
        start_time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        end_time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
        duration_ns UInt64 CODEC(T64, ZSTD(1)),
        status_code LowCardinality(String),
        status_message String CODEC(ZSTD(1)),
        run_id String CODEC(ZSTD(1)),
        session_id String CODEC(ZSTD(1)),
        agent LowCardinality(String),
        owner_id String CODEC(ZSTD(1)),
        run_status LowCardinality(String),
        operation LowCardinality(String),
        provider LowCardinality(String),
        model LowCardinality(String),
        tool LowCardinality(String),
        permission LowCardinality(String),
        outcome LowCardinality(String),
        input_tokens UInt64 CODEC(T64, ZSTD(1)),
        output_tokens UInt64 CODEC(T64, ZSTD(1)),
        attributes String CODEC(ZSTD(3)),
        events String CODEC(ZSTD(3)),
        links String CODEC(ZSTD(3)),
        INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX run_id_bloom run_id TYPE bloom_filter(0.01) GRANULARITY 1
    )
    ENGINE = MergeTree
    PARTITION BY toDate(start_time)
    ORDER BY (name, agent, start_time)
    TTL toDateTime(start_time) + INTERVAL 30 DAY
    SETTINGS ttl_only_drop_parts = 1
    """,
]
