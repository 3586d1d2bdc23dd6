from django.urls import path

from agents.openai_compat import views

urlpatterns = [
    path("models", views.ModelListView.as_view(), name="openai-models"),
    path("models/<str:model>", views.ModelDetailView.as_view(), name="openai-model"),
    path("chat/completions", views.ChatCompletionsView.as_view(), name="openai-chat-completions"),
    path("responses", views.ResponsesView.as_view(), name="openai-responses"),
    path("responses/<str:response_id>", views.ResponseDetailView.as_view(), name="openai-response"),
    path("responses/<str:response_id>/cancel", views.ResponseCancelView.as_view(), name="openai-response-cancel"),
]
