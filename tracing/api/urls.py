from django.urls import path

from tracing.api import views

urlpatterns = [
    path("traces/", views.TraceListView.as_view(), name="trace-list"),
    path("traces/<str:trace_id>/", views.TraceDetailView.as_view(), name="trace-detail"),
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
]
