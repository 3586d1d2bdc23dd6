from django.urls import path

from agents.ag_ui import views

urlpatterns = [
    path("<str:agent>", views.AgUiRunView.as_view(), name="ag-ui-run"),
]
