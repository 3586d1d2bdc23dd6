"""Webhook secrets and signatures.

A secret must be readable to compute an HMAC, so it cannot be hashed: it is encrypted at
rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag) with a key that lives outside the
database (`AGENTPLATFORM_WEBHOOK_SECRETS_KEY`, or one derived from `DJANGO_SECRET_KEY`).
Keys derived from `DJANGO_SECRET_KEY` and its fallbacks always decrypt too, so that secrets
stored before a key was set stay readable until re-encrypted (`agentplatform.encryption`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings

from agentplatform.conf import platform_settings
from agentplatform.encryption import KeyRing, Unreadable
from approvals.errors import WebhookSecretUnreadable

SECRET_PREFIX = "whsec_"  # noqa: S105  # a marker, not a secret
SIGNATURE_HEADER = "X-Agentplatform-Signature"
EVENT_HEADER = "X-Agentplatform-Event"
DELIVERY_HEADER = "X-Agentplatform-Delivery"
ATTEMPT_HEADER = "X-Agentplatform-Attempt"


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def encrypt(secret: str) -> str:
    return keyring().encrypt(secret)


def decrypt(token: str) -> str:
    try:
        return keyring().decrypt(token)
    except Unreadable:
        raise WebhookSecretUnreadable() from None


def keyring() -> KeyRing:
    """The first key encrypts; every key decrypts (put a new key first to rotate)."""
    keys = [*platform_settings().WEBHOOK_SECRETS_KEY, settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return KeyRing.of(_derived(key) for key in keys)


def _derived(key: str) -> bytes:
    # Any string works as a key: a Fernet key is 32 bytes, urlsafe-base64 encoded.
    return base64.urlsafe_b64encode(hashlib.sha256(b"agentplatform webhook secrets\0" + key.encode()).digest())


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Agentplatform-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def headers(
    *, secret: str, timestamp: int, body: bytes, event_type: str, delivery_id: str, attempt: int
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "agentplatform-webhooks/1",
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
