from django.urls import path, register_converter

from tracing.api import views


class TraceIdConverter:
    """A trace id in a path: 32 hexadecimal digits (any other string is not a route: 404)."""

    regex = "[0-9a-fA-F]{32}"

    def to_python(self, value: str) -> str:
        return value.lower()

    def to_url(self, value: str) -> str:
        return value


register_converter(TraceIdConverter, "trace_id")

urlpatterns = [
    path("traces/", views.TraceListView.as_view(), name="trace-list"),
    path("traces/<trace_id:trace_id>/", views.TraceDetailView.as_view(), name="trace-detail"),
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
]
