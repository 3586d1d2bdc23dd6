"""Secrets at rest: Fernet (AES-128-CBC with an HMAC-SHA256 tag) under a list of keys.

The first key encrypts; every key decrypts. To rotate, put a new key first and keep the old
ones until what is stored was re-encrypted under the new one (`reencrypt`, which each app's
data migration runs over the values it stores). The apps build their key rings from their
own settings (`approvals.webhook_signing`, `context.crypto`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class Unreadable(Exception):
    """No key of the ring decrypts the value (it was encrypted under a key no longer listed)."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[bytes, ...]  # Fernet keys (32 bytes, urlsafe-base64 encoded), the encrypting one first

    @classmethod
    def of(cls, keys: Iterable[bytes]) -> KeyRing:
        """A ring of the given keys in order, each once."""
        return cls(tuple(dict.fromkeys(keys)))

    def encrypt(self, value: str) -> str:
        return self._fernet().encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet().decrypt(token.encode()).decode()
        except InvalidToken:
            raise Unreadable() from None

    def rotate(self, token: str) -> str:
        """The same value, encrypted under the first key."""
        try:
            return self._fernet().rotate(token.encode()).decode()
        except InvalidToken:
            raise Unreadable() from None

    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for key in self.keys])


def reencrypt(rows: Any, field: str, ring: KeyRing) -> int:
    """Re-encrypt `field` of every row of the queryset `rows` under the ring's first key; how
    many were. A value no key reads is left as it is (it was unreadable before too), and so is
    one changed meanwhile (it was written under the first key)."""
    count = 0
    for pk, token in rows.exclude(**{field: ""}).values_list("pk", field).iterator():
        try:
            fresh = ring.rotate(token)
        except Unreadable:
            continue
        count += rows.filter(pk=pk, **{field: token}).update(**{field: fresh})
    return count
