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
- The columns the lookups filter and group by are extracted from the attributes as rows
  arrive (DEFAULT expressions): spans are sent as they are, and the names are the ones in
  agentplatform/sdk/attributes.py. A span inside a model call's span (a provider SDK's own span of the
  same call) adds no tokens and no model call.
"""
# ruff: noqa: N999  # numbered like Django's migrations, imported by name

from agentplatform.sdk import attributes as attr


def _text(key: str) -> str:
    return f"JSONExtractString(attributes, '{key}')"


def _either(first: str, second: str) -> str:
    return f"if(JSONHas(attributes, '{first}'), {_text(first)}, {_text(second)})"


def _unless_nested(value: str, otherwise: str) -> str:
    return f"if(JSONExtractBool(attributes, '{attr.MODEL_CALL_NESTED}'), {otherwise}, {value})"


def _count(key: str) -> str:
    return _unless_nested(f"JSONExtractUInt(attributes, '{key}')", "0")


OPERATIONS = [
    f"""
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
        attributes String CODEC(ZSTD(3)),
        events String CODEC(ZSTD(3)),
        links String CODEC(ZSTD(3)),
        run_id String DEFAULT {_text(attr.RUN_ID)} CODEC(ZSTD(1)),
        session_id String DEFAULT {_text(attr.SESSION_ID)} CODEC(ZSTD(1)),
        agent LowCardinality(String) DEFAULT {_text(attr.AGENT_NAME)},
        owner_id String DEFAULT {_text(attr.OWNER_ID)} CODEC(ZSTD(1)),
        run_status LowCardinality(String) DEFAULT {_text(attr.RUN_STATUS)},
        operation LowCardinality(String) DEFAULT {_unless_nested(_text(attr.GEN_AI_OPERATION), "''")},
        provider LowCardinality(String) DEFAULT {_either(attr.GEN_AI_PROVIDER, attr.GEN_AI_SYSTEM)},
        model LowCardinality(String) DEFAULT {_text(attr.GEN_AI_REQUEST_MODEL)},
        tool LowCardinality(String) DEFAULT {_text(attr.GEN_AI_TOOL_NAME)},
        permission LowCardinality(String) DEFAULT {_text(attr.TOOL_PERMISSION)},
        outcome LowCardinality(String) DEFAULT {_either(attr.TOOL_OUTCOME, attr.APPROVAL_STATUS)},
        input_tokens UInt64 DEFAULT {_count(attr.GEN_AI_INPUT_TOKENS)} CODEC(T64, ZSTD(1)),
        output_tokens UInt64 DEFAULT {_count(attr.GEN_AI_OUTPUT_TOKENS)} CODEC(T64, ZSTD(1)),
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
