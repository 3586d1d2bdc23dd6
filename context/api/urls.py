from django.urls import path

from context.api import views

urlpatterns = [
    path("context-sources/", views.ContextSourceListView.as_view(), name="context-source-list"),
    path("context-sources/<int:source_id>/", views.ContextSourceDetailView.as_view(), name="context-source-detail"),
    path(
        "context-sources/<int:source_id>/preview/",
        views.ContextSourcePreviewView.as_view(),
        name="context-source-preview",
    ),
]
