"""The control plane: the Django admin behind django-otp (a TOTP device is required), signed
into in one step (`agentplatform.signin`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_otp.admin import OTPAdminSite

from agentplatform.signin import PlatformLoginForm


class ReadOnly:
    """For admin pages (and inlines) that show records and change none: nobody adds, changes
    or deletes one here, superusers included."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformAdminSite(OTPAdminSite):
    site_header = "agentplatform"
    site_title = "agentplatform admin"
    index_title = "Control plane"
    login_form = PlatformLoginForm  # password and code in one step, one answer for any failure
    login_template = "admin/platform_login.html"
