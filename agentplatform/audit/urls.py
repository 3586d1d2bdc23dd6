from django.urls import path

from agentplatform.audit import api

urlpatterns = [
    path("audit/", api.AuditListView.as_view(), name="audit-list"),
]
