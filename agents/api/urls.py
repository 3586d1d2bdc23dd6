from django.urls import path, re_path

from agentplatform.api.base import UUID_RE

# `schema` registers the OpenAPI auth scheme as it is imported: here, with the API it describes,
# so that a process that serves no API (the worker) does not load drf-spectacular.
from agents.api import schema, views  # noqa: F401

urlpatterns = [
    path("health/", views.HealthView.as_view(), name="health"),
    path("ready/", views.ReadyView.as_view(), name="ready"),
    path("agents/", views.AgentListView.as_view(), name="agent-list"),
    path("agents/<slug:agent>/", views.AgentDetailView.as_view(), name="agent-detail"),
    path("agents/<slug:agent>/runs/", views.AgentRunsView.as_view(), name="agent-runs"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    path("sessions/<uuid:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("sessions/<uuid:session_id>/messages/", views.SessionMessagesView.as_view(), name="session-messages"),
    path("sessions/<uuid:session_id>/runs/", views.SessionRunsView.as_view(), name="session-runs"),
    path("runs/<uuid:run_id>/", views.RunDetailView.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/events/", views.RunEventsView.as_view(), name="run-events"),
    re_path(rf"^runs/(?P<run_id>{UUID_RE})/cancel/?$", views.RunCancelView.as_view(), name="run-cancel"),
    path("schedules/", views.ScheduleListView.as_view(), name="schedule-list"),
    path("schedules/<uuid:schedule_id>/", views.ScheduleDetailView.as_view(), name="schedule-detail"),
    path("schedules/<uuid:schedule_id>/runs/", views.ScheduleRunsView.as_view(), name="schedule-runs"),
    path("schedules/<uuid:schedule_id>/firings/", views.ScheduleFiringsView.as_view(), name="schedule-firings"),
]
