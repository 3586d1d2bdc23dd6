from django.urls import path

from agents.langgraph import views

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
    path(f"{THREAD}/runs", views.RunCollectionView.as_view(), name="langgraph-thread-runs"),
    path(f"{THREAD}/runs/wait", views.RunWaitView.as_view(), name="langgraph-thread-run-wait"),
    path(f"{THREAD}/runs/stream", views.RunStreamView.as_view(), name="langgraph-thread-run-stream"),
    path(RUN, views.RunDetailView.as_view(), name="langgraph-run"),
    path(f"{RUN}/cancel", views.RunCancelView.as_view(), name="langgraph-run-cancel"),
    path(f"{RUN}/join", views.RunJoinView.as_view(), name="langgraph-run-join"),
    path("runs", views.RunCreateView.as_view(), name="langgraph-runs"),
    path("runs/wait", views.RunWaitView.as_view(), name="langgraph-run-wait"),
    path("runs/stream", views.RunStreamView.as_view(), name="langgraph-run-stream"),
]
