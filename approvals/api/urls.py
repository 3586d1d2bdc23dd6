from django.urls import path, re_path

from approvals.api import views, webhook_views

urlpatterns = [
    path("approvals/", views.ApprovalListView.as_view(), name="approval-list"),
    path("approvals/<str:approval_id>/", views.ApprovalDetailView.as_view(), name="approval-detail"),
    re_path(r"^approvals/(?P<approval_id>[^/]+)/approve/?$", views.ApproveView.as_view(), name="approval-approve"),
    re_path(r"^approvals/(?P<approval_id>[^/]+)/reject/?$", views.RejectView.as_view(), name="approval-reject"),
    path("webhooks/", webhook_views.WebhookListView.as_view(), name="webhook-list"),
    path(
        "webhooks/deliveries/<str:delivery_id>/",
        webhook_views.WebhookDeliveryView.as_view(),
        name="webhook-delivery",
    ),
    re_path(
        r"^webhooks/deliveries/(?P<delivery_id>[^/]+)/resend/?$",
        webhook_views.WebhookResendView.as_view(),
        name="webhook-delivery-resend",
    ),
    path("webhooks/<str:webhook_id>/", webhook_views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<str:webhook_id>/deliveries/",
        webhook_views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
]
