"""API keys: created with the key shown once, revoked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agentplatform.users import User
from agents.errors import ApiKeyRejected
from agents.keys import generate_key
from agents.models import (
    Agent,
    ApiKey,
)


def create_api_key(
    *,
    user: User,
    name: str = "",
    agents: Iterable[Agent] = (),
    scopes: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for `user`; the plaintext key is returned once and never stored."""
    key, prefix, key_hash = generate_key()
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            user=user, name=name, prefix=prefix, key_hash=key_hash, scopes=sorted(set(scopes)), expires_at=expires_at
        )
        api_key.agents.set(list(agents))
    return api_key, key


def revoke_api_keys(keys: Iterable[ApiKey]) -> int:
    return ApiKey.objects.filter(pk__in=[k.pk for k in keys], revoked_at__isnull=True).update(revoked_at=timezone.now())


def ensure_usable(user: User, api_key: ApiKey | None) -> None:
    """The user is active and the key (if any) neither revoked nor expired, or ApiKeyRejected."""
    if api_key is not None and api_key.revoked_at is not None:
        raise _rejected("api_key_revoked", f"The API key {api_key.prefix}… has been revoked.")
    if api_key is not None and api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        raise _rejected("api_key_expired", f"The API key {api_key.prefix}… has expired.")
    if not user.is_active:
        raise _rejected("user_inactive", f"The user {user} is inactive.")


def _rejected(code: str, message: str) -> ApiKeyRejected:
    error = ApiKeyRejected(message)
    error.code = code
    return error
