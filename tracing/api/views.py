"""REST adapters for traces and metrics: parse the query, read the store as the caller, shape it.

A caller sees the traces that contain its own runs (their spans carry its owner id), and
metrics of its own runs; staff see everything in the admin, not here.
"""

from __future__ import annotations

from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from agentplatform.api.base import CallerAPIView
from tracing import filters, selectors
from tracing.api.serializers import (
    MetricsSerializer,
    TracePageSerializer,
    TraceSerializer,
    metrics_data,
    summary_data,
    trace_data,
)
from tracing.metrics import metrics

TRACE_PARAMETERS = [
    OpenApiParameter("agent", str, description="Only traces with this agent's runs"),
    OpenApiParameter("status", str, description="Only traces with a run that ended with this status"),
    OpenApiParameter("run", str, description="Only the traces of this run (a run paused for approval has two)"),
    OpenApiParameter("from", str, description="ISO 8601: traces that started at or after"),
    OpenApiParameter("to", str, description="ISO 8601: traces that started before"),
    OpenApiParameter("min_duration_ms", float, description="Traces that lasted at least this long"),
    OpenApiParameter("errors", bool, description="Only traces with a span that failed"),
    OpenApiParameter("limit", int, description="1 to 200 (default 50)"),
    OpenApiParameter("cursor", str, description="From the previous page's `next`"),
]


class CallerTraceView(CallerAPIView):
    @property
    def owner_id(self) -> str:
        return str(self.owner.pk)


class TraceListView(CallerTraceView):
    @extend_schema(
        operation_id="traces_list",
        parameters=TRACE_PARAMETERS,
        responses=TracePageSerializer,
        summary="Traces of your runs, newest first",
    )
    def get(self, request: Request) -> Response:
        selected = filters.trace_filter(request.query_params)
        rows = selectors.list_traces(selected, owner=self.owner_id)
        following = None
        if len(rows) == selected.limit:
            query = {**request.query_params.dict(), "cursor": filters.encode_cursor(rows[-1].cursor)}
            following = request.build_absolute_uri(f"{request.path}?{urlencode(query)}")
        return Response({"next": following, "results": [summary_data(row) for row in rows]})


class TraceDetailView(CallerTraceView):
    @extend_schema(operation_id="traces_retrieve", responses=TraceSerializer, summary="A trace with its spans")
    def get(self, request: Request, trace_id: str) -> Response:
        return Response(trace_data(selectors.get_trace(filters.trace_id(trace_id), owner=self.owner_id)))


class MetricsView(CallerTraceView):
    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="ISO 8601 (default: 24 hours before `to`)"),
            OpenApiParameter("to", str, description="ISO 8601 (default: now)"),
            OpenApiParameter("agent", str, description="Only this agent's runs"),
        ],
        responses=MetricsSerializer,
        summary="Runs, latency, tokens, tool calls, approval waits and error rate of your runs",
    )
    def get(self, request: Request) -> Response:
        window = filters.metrics_window(request.query_params)
        found = metrics(window.since, window.until, window.agent, owner=self.owner_id)
        return Response(metrics_data(found))
