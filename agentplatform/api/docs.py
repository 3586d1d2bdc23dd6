from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from agentplatform.conf import platform_settings


class DocsAccess(BasePermission):
    """The schema and Swagger UI: for an API key or a signed-in admin, unless made public."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return platform_settings().API_DOCS_PUBLIC or bool(user is not None and user.is_authenticated)
