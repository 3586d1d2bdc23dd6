"""Signing in to the admin: password and second factor in one step, one answer for any failure,
and the throttling (django-axes) that counts those failures.

The form never says which part was wrong: a wrong password, a wrong or missing code, an
inactive or non-staff account all get the same page with the same message, so the page does
not tell an attacker that a guessed password was right. Every one of those failures is a
failed sign-in for axes (Django reports a wrong password itself; the rest is reported here),
which locks the username and the client address out after
`AGENTPLATFORM_ADMIN_LOCKOUT_FAILURES` failures for `AGENTPLATFORM_ADMIN_LOCKOUT_COOLOFF`
seconds. A locked-out attempt is refused before the password is checked.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django_otp import devices_for_user

from agentplatform.conf import platform_settings

FAILED = (
    "Please enter the correct username, password and authentication code of a staff account. "
    "Note that the fields may be case-sensitive."
)


class CodeInput(forms.TextInput):
    """A code field that comes back empty: a used or refused code is of no use again."""

    def format_value(self, value: Any) -> None:
        return None


class PlatformLoginForm(AdminAuthenticationForm):
    """Username, password and the authenticator's current code, checked together.

    The code is tried on the user's confirmed devices (most recently used first) until one
    accepts it; with a single authenticator, the usual case, only that one is tried.
    """

    otp_token = forms.CharField(
        label="Authentication code",
        required=False,  # a missing code is a failed sign-in like any other, not a field error
        max_length=64,
        strip=True,
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    error_messages = {**AdminAuthenticationForm.error_messages, "invalid_login": FAILED, "inactive": FAILED}

    def clean(self) -> dict[str, Any]:
        try:
            cleaned: dict[str, Any] = super().clean()  # a wrong password is reported to axes by Django
        except ValidationError:
            self._refuse(password_checked=self.user_cache is not None)
        user: Any = self.user_cache
        if user is None:  # username or password missing: their fields say so
            return cleaned
        device = _verified_device(user, cleaned.get("otp_token") or "")
        if device is None:
            self._refuse(password_checked=True)
        user.otp_device = device  # django-otp marks the session verified on login
        return cleaned

    def _refuse(self, *, password_checked: bool) -> NoReturn:
        """The one answer to any failure; counted by axes when Django has not counted it yet."""
        if password_checked:
            username = self.cleaned_data.get("username")
            user_login_failed.send(sender=__name__, credentials={"username": username}, request=self.request)
        self.user_cache = None
        raise ValidationError(FAILED, code="invalid_login")


def _verified_device(user: Any, token: str) -> Any:
    """The user's confirmed device that accepts `token` (recording the use), or None.

    Each device's own throttling applies (a device that refuses verification for now is
    skipped), inside one transaction as django-otp requires.
    """
    if not token:
        return None
    with transaction.atomic():
        devices = sorted(devices_for_user(user, confirmed=True, for_verify=True), key=_last_used, reverse=True)
        for device in devices:
            allowed, _ = device.verify_is_allowed()
            if allowed and device.verify_token(token):
                return device
    return None


def _last_used(device: Any) -> float:
    used = getattr(device, "last_used_at", None)
    return used.timestamp() if used is not None else 0.0


# django-axes reads these through its settings (AXES_FAILURE_LIMIT, AXES_COOLOFF_TIME,
# AXES_CLIENT_IP_CALLABLE), so that the platform's settings object stays the one source.


def failure_limit(request: HttpRequest, credentials: Any) -> int:
    return platform_settings().ADMIN_LOCKOUT_FAILURES


def cool_off(request: HttpRequest | None = None) -> timedelta | None:
    seconds = platform_settings().ADMIN_LOCKOUT_COOLOFF
    return timedelta(seconds=seconds) if seconds else None  # 0: until unlocked in the admin


def client_ip(request: HttpRequest) -> str | None:
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def client_address(remote: str | None, forwarded_for: str) -> str | None:
    """The client's address: the connection's (`remote`), or behind `ADMIN_LOCKOUT_TRUSTED_PROXIES`
    proxies the entry of `X-Forwarded-For` that the outermost trusted proxy added."""
    proxies = platform_settings().ADMIN_LOCKOUT_TRUSTED_PROXIES
    if not proxies:
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    return hops[-proxies] if len(hops) >= proxies else remote
