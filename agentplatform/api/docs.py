from typing import Any

from rest_framework.permissions import AllowAny, IsAuthenticated

from agentplatform.conf import platform_settings


def docs_permissions() -> list[Any]:
    """The schema and Swagger UI describe the API and hold no data: public unless configured."""
    return [AllowAny] if platform_settings().API_DOCS_PUBLIC else [IsAuthenticated]
