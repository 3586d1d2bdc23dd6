"""Credentials stored in the database, encrypted with Fernet (AES-128-CBC with HMAC-SHA256).

The key is `AGENTPLATFORM_ENCRYPTION_KEY` (generate one with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)
or, without it, derived from `DJANGO_SECRET_KEY` with HKDF: then changing the secret key
makes stored credentials unreadable, and they must be entered again.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from context.conf import context_settings

_INFO = b"agentplatform context credentials v1"


class CredentialUnreadable(Exception):
    """A stored credential cannot be decrypted (the key changed since it was stored)."""


def _fernet() -> Fernet:
    configured = context_settings().ENCRYPTION_KEY
    if configured:
        try:
            return Fernet(configured)
        except (ValueError, binascii.Error) as exc:
            raise ImproperlyConfigured("AGENTPLATFORM_ENCRYPTION_KEY is not a Fernet key") from exc
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable("the stored credential cannot be decrypted with the current key") from None
