"""Passwords are stored as argon2id hashes with a fresh salt; tokens only as SHA-256 digests."""

from __future__ import annotations

from countylab.identity import secrets as sec


def test_password_hashes_are_salted_argon2id_and_verify_only_the_right_password():
    first, second = sec.hash_password("county-pass-1"), sec.hash_password("county-pass-1")
    assert first.startswith("$argon2id$") and "county-pass-1" not in first
    assert first != second  # a fresh salt each time
    assert sec.verify_password(first, "county-pass-1")
    assert not sec.verify_password(first, "county-pass-2")
    assert not sec.verify_password("not-a-hash", "county-pass-1")


def test_tokens_are_random_and_stored_as_digests():
    a, b = sec.new_token(), sec.new_token()
    assert a != b and a.startswith(sec.TOKEN_PREFIX) and len(a) > 40
    assert sec.digest(a) == sec.digest(a) and sec.digest(a) != sec.digest(b) and a not in sec.digest(a)
    assert sec.same(a, a) and not sec.same(a, b)
