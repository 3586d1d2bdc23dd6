"""The control plane: the Django admin behind django-otp (a TOTP device is required), signed
into in one step (`agentplatform.signin`)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.template.response import SimpleTemplateResponse
from django.utils.functional import SimpleLazyObject, empty
from django_otp.admin import OTPAdminSite

from agentplatform import replicas
from agentplatform.signin import PlatformLoginForm


class LazyMessageMiddleware(MessageMiddleware):
    """Django's messages (the admin's "was changed successfully"), their store made only for a
    request that uses it: an API request never does, and making it (a cookie signer, then
    reading the cookie) cost a history read about a twentieth of its CPU."""

    def process_request(self, request: HttpRequest) -> None:
        request._messages = SimpleLazyObject(lambda: default_storage(request))  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        messages = getattr(request, "_messages", None)
        if isinstance(messages, SimpleLazyObject) and messages._wrapped is empty:
            return response  # never used: nothing to store
        return super().process_response(request, response)


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
