"""Credentials stored in the database, encrypted with Fernet (AES-128-CBC with HMAC-SHA256).

The keys are `AGENTPLATFORM_ENCRYPTION_KEY`, comma-separated Fernet keys (the first encrypts,
all decrypt; generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`),
then keys derived with HKDF from `DJANGO_SECRET_KEY` and its fallbacks, which encrypt when no
key is set and otherwise only decrypt what was stored before (`agentplatform.encryption`).
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from agentplatform.encryption import KeyRing, Unreadable
from context.conf import context_settings

_INFO = b"agentplatform context credentials v1"


class CredentialUnreadable(Exception):
    """A stored credential cannot be decrypted (the key changed since it was stored)."""


def keyring() -> KeyRing:
    configured = [_fernet_key(key) for key in context_settings().ENCRYPTION_KEY]
    derived = [_derived(secret) for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)]
    return KeyRing.of([*configured, *derived])


def _fernet_key(key: str) -> bytes:
    try:
        Fernet(key)
    except (ValueError, binascii.Error) as exc:
        raise ImproperlyConfigured("AGENTPLATFORM_ENCRYPTION_KEY is not a list of Fernet keys") from exc
    return key.encode()


def _derived(secret: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return base64.urlsafe_b64encode(derived)


def encrypt(value: str) -> str:
    return keyring().encrypt(value)


def decrypt(token: str) -> str:
    try:
        return keyring().decrypt(token)
    except Unreadable:
        raise CredentialUnreadable("the stored credential cannot be decrypted with the current key") from None
