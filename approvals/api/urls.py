from django.urls import path, re_path

from agentplatform.api.base import UUID_RE
from approvals.api import views, webhook_views

urlpatterns = [
    path("approvals/", views.ApprovalListView.as_view(), name="approval-list"),
    path("approvals/<uuid:approval_id>/", views.ApprovalDetailView.as_view(), name="approval-detail"),
    re_path(rf"^approvals/(?P<approval_id>{UUID_RE})/approve/?$", views.ApproveView.as_view(), name="approval-approve"),
    re_path(rf"^approvals/(?P<approval_id>{UUID_RE})/reject/?$", views.RejectView.as_view(), name="approval-reject"),
    path("webhooks/", webhook_views.WebhookListView.as_view(), name="webhook-list"),
    path(
        "webhooks/deliveries/<uuid:delivery_id>/",
        webhook_views.WebhookDeliveryView.as_view(),
        name="webhook-delivery",
    ),
    re_path(
        rf"^webhooks/deliveries/(?P<delivery_id>{UUID_RE})/resend/?$",
        webhook_views.WebhookResendView.as_view(),
        name="webhook-delivery-resend",
    ),
    path("webhooks/<uuid:webhook_id>/", webhook_views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<uuid:webhook_id>/deliveries/",
        webhook_views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
]
