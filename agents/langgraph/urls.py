from django.urls import path

from agents.langgraph import crons, runs, views

THREAD = "threads/<uuid:thread_id>"
RUN = f"{THREAD}/runs/<uuid:run_id>"

urlpatterns = [
    path("assistants/search", views.AssistantSearchView.as_view(), name="langgraph-assistant-search"),
    path("assistants/<str:assistant_id>", views.AssistantDetailView.as_view(), name="langgraph-assistant"),
    path("threads", views.ThreadListView.as_view(), name="langgraph-threads"),
    path("threads/search", views.ThreadSearchView.as_view(), name="langgraph-thread-search"),
    path(THREAD, views.ThreadDetailView.as_view(), name="langgraph-thread"),
    path(f"{THREAD}/state", views.ThreadStateView.as_view(), name="langgraph-thread-state"),
    path(f"{THREAD}/history", views.ThreadHistoryView.as_view(), name="langgraph-thread-history"),
    path(f"{THREAD}/runs", runs.RunCollectionView.as_view(), name="langgraph-thread-runs"),
    path(f"{THREAD}/runs/wait", runs.RunWaitView.as_view(), name="langgraph-thread-run-wait"),
    path(f"{THREAD}/runs/stream", runs.RunStreamView.as_view(), name="langgraph-thread-run-stream"),
    path(f"{THREAD}/runs/crons", crons.CronCreateView.as_view(), name="langgraph-thread-crons"),
    path(RUN, runs.RunDetailView.as_view(), name="langgraph-run"),
    path(f"{RUN}/cancel", runs.RunCancelView.as_view(), name="langgraph-run-cancel"),
    path(f"{RUN}/join", runs.RunJoinView.as_view(), name="langgraph-run-join"),
    path(f"{RUN}/stream", runs.RunJoinStreamView.as_view(), name="langgraph-run-stream-join"),
    path("runs", runs.RunCreateView.as_view(), name="langgraph-runs"),
    path("runs/wait", runs.RunWaitView.as_view(), name="langgraph-run-wait"),
    path("runs/stream", runs.RunStreamView.as_view(), name="langgraph-run-stream"),
    path("runs/crons", crons.CronCreateView.as_view(), name="langgraph-crons"),
    path("runs/crons/search", crons.CronSearchView.as_view(), name="langgraph-cron-search"),
    path("runs/crons/count", crons.CronCountView.as_view(), name="langgraph-cron-count"),
    path("runs/crons/<uuid:cron_id>", crons.CronDetailView.as_view(), name="langgraph-cron"),
]
