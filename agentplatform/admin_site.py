"""The control plane: the Django admin behind django-otp (a TOTP device is required)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class PlatformLoginForm(OTPAdminAuthenticationForm):
    """Password and code in one step for the usual case of a single authenticator.

    django-otp asks the user to pick a device rather than trying the token on each (which
    would count failures against devices not used). With exactly one confirmed device
    there is nothing to pick, so it is chosen; with several, the user still picks.
    """

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                return devices[0]
        return device


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
    login_form = PlatformLoginForm
