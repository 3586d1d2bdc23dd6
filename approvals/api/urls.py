from django.urls import path, re_path

from approvals.api import views

urlpatterns = [
    path("approvals/", views.ApprovalListView.as_view(), name="approval-list"),
    path("approvals/<str:approval_id>/", views.ApprovalDetailView.as_view(), name="approval-detail"),
    re_path(r"^approvals/(?P<approval_id>[^/]+)/approve/?$", views.ApproveView.as_view(), name="approval-approve"),
    re_path(r"^approvals/(?P<approval_id>[^/]+)/reject/?$", views.RejectView.as_view(), name="approval-reject"),
]
