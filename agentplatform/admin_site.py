"""The control plane: the Django admin behind django-otp (a TOTP device is required)."""

from django_otp.admin import OTPAdminSite


class PlatformAdminSite(OTPAdminSite):
    site_header = "agentplatform"
    site_title = "agentplatform admin"
    index_title = "Control plane"
