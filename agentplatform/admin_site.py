"""The control plane: the Django admin behind django-otp (a TOTP device is required), signed
into in one step (`agentplatform.signin`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django_otp.admin import OTPAdminSite

from agentplatform import replicas
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


class LagTolerantChangelist(admin.ModelAdmin):
    """For admin lists that may show rows a few seconds old: a GET of the list reads from a
    read replica when one may serve the operator (`agentplatform.replicas`). Actions (a POST)
    and the pages of one object read from the primary."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        show = super().changelist_view
        if request.method != "GET":
            return show(request, extra_context)

        def rendered() -> HttpResponse:
            response = show(request, extra_context)
            if isinstance(response, SimpleTemplateResponse):
                response.render()  # the page's queries run when it renders: here, on the replica
            return response

        return replicas.read(rendered, owner_id=request.user.pk)


class PlatformAdminSite(OTPAdminSite):
    site_header = "agentplatform"
    site_title = "agentplatform admin"
    index_title = "Control plane"
    login_form = PlatformLoginForm  # password and code in one step, one answer for any failure
    login_template = "admin/platform_login.html"
