"""Passwords (argon2id) and opaque bearer secrets (API tokens, session ids).

Passwords are low-entropy, so they get a memory-hard hash.  Tokens and session ids are 256-bit
random strings, so a SHA-256 digest is enough to store them and lets us look them up by hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id with the library's vetted defaults
TOKEN_PREFIX = "clk_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify() -> None:
    """Spend the same time as a real check, so unknown usernames are not revealed by timing."""
    verify_password(_DUMMY_HASH, "not-the-password")


_DUMMY_HASH = _HASHER.hash("countylab-dummy-password")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
