"""The trace viewer in the admin: the trace list, a trace's waterfall, and the metrics dashboard.

Staff with the `view` permission on traces (or metrics) see every trace. Each page reads
the span store (through the route to the span sink, in the embedded topology); when the
store does not answer, the page says so instead of failing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from agentplatform.admin_site import ReadOnly
from agentplatform.errors import InvalidInput
from tracing import dashboard, filters, links, selectors, waterfall
from tracing.errors import StoreUnavailable, TraceNotFound
from tracing.metrics import metrics
from tracing.models import Metrics, Trace


class _ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}


@admin.register(Trace)
class TraceAdmin(_ReadOnlyAdmin):
    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("", view(self.list_view), name="tracing_trace_changelist"),
            path("run/<str:run_id>/", view(self.run_view), name="tracing_trace_run"),
            path("<str:trace_id>/", view(self.detail_view), name="tracing_trace_detail"),
        ]

    def list_view(self, request: HttpRequest) -> HttpResponse:
        context = self._context(request, "Traces", params=request.GET, rows=[], agents=[], statuses=[])
        try:
            selected = filters.trace_filter(request.GET)
            context["agents"], context["statuses"] = selectors.filter_choices(owner=None)
            rows = selectors.list_traces(selected, owner=None)
        except (InvalidInput, StoreUnavailable) as exc:
            context["error"] = exc.message
            return TemplateResponse(request, "admin/tracing/trace_list.html", context)
        context["rows"] = [(row, [(run, links.run_url(run)) for run in row.runs]) for row in rows]
        if len(rows) == selected.limit:
            query = {**request.GET.dict(), "cursor": filters.encode_cursor(rows[-1].cursor)}
            context["older"] = f"?{urlencode(query)}"
        return TemplateResponse(request, "admin/tracing/trace_list.html", context)

    def run_view(self, request: HttpRequest, run_id: str) -> HttpResponse:
        """From a run's admin page: its trace, or the list of its traces when it has several."""
        self._context(request, "Traces")
        listed = f"{reverse('admin:tracing_trace_changelist')}?{urlencode({'run': run_id})}"
        try:
            found = selectors.run_traces(filters.trace_filter({"run": run_id}).run, owner=None)
        except (InvalidInput, StoreUnavailable):
            return HttpResponseRedirect(listed)
        if len(found) == 1:
            return HttpResponseRedirect(reverse("admin:tracing_trace_detail", args=[found[0].trace_id]))
        return HttpResponseRedirect(listed)

    def detail_view(self, request: HttpRequest, trace_id: str) -> HttpResponse:
        context = self._context(request, f"Trace {trace_id}")
        try:
            trace = selectors.get_trace(filters.trace_id(trace_id), owner=None)
        except (InvalidInput, TraceNotFound) as exc:
            raise Http404(exc.message) from exc
        except StoreUnavailable as exc:
            context["error"] = exc.message
            return TemplateResponse(request, "admin/tracing/trace_detail.html", context)
        context.update(
            trace=trace,
            started=waterfall.started(trace),
            waterfall=waterfall.waterfall(trace, links.run_url),
            runs=[(run, links.run_url(run)) for run in trace.summary.runs],
        )
        return TemplateResponse(request, "admin/tracing/trace_detail.html", context)


@admin.register(Metrics)
class MetricsAdmin(_ReadOnlyAdmin):
    def get_urls(self) -> list[URLPattern]:
        return [path("", self.admin_site.admin_view(self.dashboard_view), name="tracing_metrics_changelist")]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        context = self._context(request, "Metrics", params=request.GET)
        try:
            window = filters.metrics_window(request.GET)
            context["agents"], _ = selectors.filter_choices(owner=None)
            found = metrics(window.since, window.until, window.agent, owner=None)
        except (InvalidInput, StoreUnavailable) as exc:
            context["error"] = exc.message
            return TemplateResponse(request, "admin/tracing/metrics.html", context)
        context.update(metrics=found, window=window, charts=dashboard.charts_for(found))
        return TemplateResponse(request, "admin/tracing/metrics.html", context)
