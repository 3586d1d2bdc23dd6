"""`Authorization: Bearer <api key>` for DRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents.keys import KEY_PREFIX, hash_key
from agents.models import ApiKey

LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most this often per key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key.startswith(KEY_PREFIX):
            raise exceptions.AuthenticationFailed("Malformed API key.", code="invalid_api_key")
        try:
            api_key = ApiKey.objects.select_related("user").get(key_hash=hash_key(key))
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown API key.", code="invalid_api_key") from None
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("This API key's user is inactive.", code="user_inactive")
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
