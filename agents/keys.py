"""API key material: generation, hashing and parsing. Only hashes reach the database."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "ap_"


def generate_key() -> tuple[str, str, str]:
    """A new key: (the full key shown once, its display prefix, its SHA-256 hash)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(KEY_PREFIX) + 8], hash_key(key)


def hash_key(key: str) -> str:
    # Keys are 256 random bits: a fast hash is enough, and lets us look a key up by it.
    return hashlib.sha256(key.encode()).hexdigest()
