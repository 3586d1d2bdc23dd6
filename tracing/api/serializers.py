"""The trace API's response shapes (for the OpenAPI schema; the views build plain dicts)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tracing.metrics import Metrics
from tracing.selectors import Span, Trace, TraceSummary, from_ns


class TraceSummarySerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    root_name = serializers.CharField()
    span_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    agents = serializers.ListField(child=serializers.CharField())
    runs = serializers.ListField(child=serializers.CharField())
    statuses = serializers.ListField(child=serializers.CharField(), help_text="The statuses its runs ended with.")
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()


class TracePageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="The next (older) page, or null.")
    results = TraceSummarySerializer(many=True)


class SpanSerializer(serializers.Serializer):
    span_id = serializers.CharField()
    parent_span_id = serializers.CharField(help_text="Empty for the trace's root.")
    name = serializers.CharField()
    kind = serializers.CharField()
    service = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    depth = serializers.IntegerField()
    status = serializers.CharField(help_text="unset, ok or error")
    status_message = serializers.CharField()
    run_id = serializers.CharField()
    attributes = serializers.DictField()
    events = serializers.ListField(child=serializers.DictField())
    links = serializers.ListField(child=serializers.DictField())


class TraceSerializer(TraceSummarySerializer):
    spans = SpanSerializer(many=True, help_text="Depth first: each span before its children, siblings by start.")


class MetricsSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    agent = serializers.CharField()
    bucket_seconds = serializers.IntegerField()
    total_runs = serializers.IntegerField()
    failed_runs = serializers.IntegerField()
    error_rate = serializers.FloatField()
    runs = serializers.ListField(child=serializers.DictField(), help_text="{bucket, agent, status, runs}")
    latency_by_agent = serializers.ListField(
        child=serializers.DictField(), help_text='{agent ("": all), runs, p50_ms, p95_ms}'
    )
    latency_over_time = serializers.ListField(child=serializers.DictField(), help_text="{bucket, p50_ms, p95_ms}")
    errors_over_time = serializers.ListField(
        child=serializers.DictField(), help_text="{bucket, runs, failed, error_rate}"
    )
    tokens = serializers.ListField(
        child=serializers.DictField(), help_text="{agent, model, calls, input_tokens, output_tokens}"
    )
    tools = serializers.ListField(child=serializers.DictField(), help_text="{permission, outcome, calls}")
    approvals = serializers.ListField(
        child=serializers.DictField(), help_text="{status, requests, p50_ms, p95_ms, longest_ms}"
    )


def summary_data(summary: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": summary.trace_id,
        "started_at": summary.started_at.isoformat(),
        "duration_ms": summary.duration_ms,
        "root_name": summary.root_name,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
        "agents": summary.agents,
        "runs": summary.runs,
        "statuses": summary.statuses,
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
    }


def span_data(span: Span) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "kind": span.kind,
        "service": span.service,
        "started_at": from_ns(span.start_ns).isoformat(),
        "duration_ms": span.duration_ms,
        "depth": span.depth,
        "status": span.status_code,
        "status_message": span.status_message,
        "run_id": span.run_id,
        "attributes": span.attributes,
        "events": span.events,
        "links": span.links,
    }


def trace_data(trace: Trace) -> dict[str, Any]:
    return {**summary_data(trace.summary), "spans": [span_data(span) for span in trace.spans]}


def metrics_data(found: Metrics) -> dict[str, Any]:
    return {
        "since": found.since.isoformat(),
        "until": found.until.isoformat(),
        "agent": found.agent,
        "bucket_seconds": found.bucket_seconds,
        "total_runs": found.total_runs,
        "failed_runs": found.failed_runs,
        "error_rate": found.error_rate,
        "runs": found.runs,
        "latency_by_agent": found.latency_by_agent,
        "latency_over_time": found.latency_over_time,
        "errors_over_time": found.errors_over_time,
        "tokens": found.tokens,
        "tools": found.tools,
        "approvals": found.approvals,
    }
