from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    """The Django admin, on a site that requires a verified second factor."""

    default_site = "agentplatform.admin_site.PlatformAdminSite"


class PlatformConfig(AppConfig):
    name = "agentplatform"
    label = "agentplatform"
    verbose_name = "Agent platform"
