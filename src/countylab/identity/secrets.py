"""Passwords (argon2id) and opaque bearer secrets (API tokens, session ids).

Passwords are low-entropy, so they get a memory-hard hash.  Tokens and session ids are 256-bit
random strings, so a SHA-256 digest is enough to store them and lets us look them up by hash.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "clk_"  # noqa: S105 - a public prefix, not a secret
MIN_PASSWORD_LENGTH = 8

# The test suite logs in thousands of times; at the library's vetted cost (about 0.1 s a hash) that
# is minutes of CI.  With this variable set to "1", *new* hashes use argon2-cffi's own CHEAPEST
# profile, which that library provides for tests.  Verification always reads the cost from the
# stored hash, so hashes made either way verify either way.  `countylab doctor` reports the
# variable as an error, and the server logs a warning at start: it is never for a real county.
INSECURE_TEST_HASHING_ENV = "COUNTYLAB_INSECURE_TEST_PASSWORD_HASHING"


def insecure_test_hashing() -> bool:
    return os.environ.get(INSECURE_TEST_HASHING_ENV) == "1"


@functools.cache
def _hasher_for(cheap: bool) -> PasswordHasher:
    if cheap:
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()  # argon2id with the library's vetted defaults (RFC 9106, low memory)


def _hasher() -> PasswordHasher:
    return _hasher_for(insecure_test_hashing())


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash(cheap: bool) -> str:
    return _hasher_for(cheap).hash("countylab-dummy-password")


def dummy_verify() -> None:
    """Spend the same time as a real check, so unknown usernames are not revealed by timing."""
    verify_password(_dummy_hash(insecure_test_hashing()), "not-the-password")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
