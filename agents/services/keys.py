"""API keys: created with the key shown once, revoked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agentplatform.audit.actors import Actor
from agentplatform.audit.models import Action, TargetType
from agentplatform.audit.services import record_change, snapshot
from agentplatform.users import User
from agents.errors import ApiKeyRejected
from agents.keys import generate_key
from agents.models import (
    Agent,
    ApiKey,
)

# What the audit log shows of a key (never its hash).
AUDITED_FIELDS = (
    "prefix",
    "name",
    "user",
    "agents",
    "scopes",
    "expires_at",
    "revoked_at",
    "requests_per_minute",
    "runs_per_minute",
    "concurrent_runs",
    "tokens_per_day",
)


def create_api_key(
    *,
    user: User,
    actor: Actor,
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
        record_change(actor, TargetType.API_KEY, api_key, None, snapshot(api_key, AUDITED_FIELDS))
    return api_key, key


def revoke_api_keys(keys: Iterable[ApiKey], *, actor: Actor) -> int:
    """Revoke those of `keys` still active; each revocation is an audit entry."""
    now = timezone.now()
    with transaction.atomic():
        active = list(ApiKey.objects.select_for_update().filter(pk__in=[k.pk for k in keys], revoked_at__isnull=True))
        for api_key in active:
            before = snapshot(api_key, ["revoked_at"])
            api_key.revoked_at = now
            after = snapshot(api_key, ["revoked_at"])
            record_change(actor, TargetType.API_KEY, api_key, before, after, action=Action.REVOKED)
        ApiKey.objects.filter(pk__in=[k.pk for k in active]).update(revoked_at=now)
    return len(active)


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
