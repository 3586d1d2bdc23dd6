from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agentplatform.api.docs import DocsAccess

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("agents.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("context.api.urls")),
    path("api/v1/", include("tracing.api.urls")),
    path("api/v1/", include("agentplatform.audit.urls")),
    path("langgraph/", include("agents.langgraph.urls")),
    path("openai/v1/", include("agents.openai_compat.urls")),
    path("ag-ui/", include("agents.ag_ui.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[DocsAccess]), name="schema"),
    path(
        "api/v1/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[DocsAccess]),
        name="docs",
    ),
]

handler404 = "agentplatform.api.errors.not_found"
handler500 = "agentplatform.api.errors.server_error"
