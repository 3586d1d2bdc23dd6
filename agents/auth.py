"""API keys for DRF: `Authorization: Bearer <api key>`, or `X-Api-Key: <api key>` (LangGraph's SDK)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents import selectors
from agents.errors import ApiKeyRejected
from agents.keys import KEY_PREFIX, hash_key
from agents.models import ApiKey
from agents.services.keys import ensure_usable

LAST_USED_RESOLUTION = timedelta(minutes=1)  # write last_used_at at most this often per key


def authenticate_key(key: str) -> ApiKey:
    """The active API key for a bearer token (its user loaded), or ApiKeyRejected saying why."""
    if not key.startswith(KEY_PREFIX):
        raise ApiKeyRejected("Malformed API key.")
    api_key = selectors.key_with_user(hash_key(key))
    if api_key is None:
        raise ApiKeyRejected("Unknown API key.")
    ensure_usable(api_key.user, api_key)
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        try:
            api_key = authenticate_key(key.strip())
        except ApiKeyRejected as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyHeaderAuthentication(authentication.BaseAuthentication):
    """The key in `X-Api-Key`, as LangGraph's SDK sends it; checked exactly like a bearer key."""

    header = "X-Api-Key"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        key = request.headers.get(self.header, "").strip()
        if not key:
            return None
        try:
            api_key = authenticate_key(key)
        except ApiKeyRejected as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from None
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.header
