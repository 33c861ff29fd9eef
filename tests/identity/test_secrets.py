"""Passwords are stored as argon2id hashes with a fresh salt; tokens only as SHA-256 digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from countylab.identity import secrets as sec


def test_password_hashes_are_salted_argon2id_and_verify_only_the_right_password(vetted_hashing: None):
    first, second = sec.hash_password("county-pass-1"), sec.hash_password("county-pass-1")
    assert first.startswith("$argon2id$") and "county-pass-1" not in first
    assert "$m=65536,t=3,p=4$" in first  # RFC 9106's low-memory profile, argon2-cffi's default
    assert first != second  # a fresh salt each time
    assert sec.verify_password(first, "county-pass-1")
    assert not sec.verify_password(first, "county-pass-2")
    assert not sec.verify_password("not-a-hash", "county-pass-1")


def test_tokens_are_random_and_stored_as_digests():
    a, b = sec.new_token(), sec.new_token()
    assert a != b and a.startswith(sec.TOKEN_PREFIX) and len(a) > 40
    assert sec.digest(a) == sec.digest(a) and sec.digest(a) != sec.digest(b) and a not in sec.digest(a)
    assert sec.same(a, a) and not sec.same(a, b)


def test_the_test_only_profile_is_opt_in_and_its_hashes_verify_either_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(sec.INSECURE_TEST_HASHING_ENV, raising=False)
    vetted = sec.hash_password("county-pass-1")
    monkeypatch.setenv(sec.INSECURE_TEST_HASHING_ENV, "yes")  # only "1" switches it on
    assert "$m=65536," in sec.hash_password("county-pass-1")
    monkeypatch.setenv(sec.INSECURE_TEST_HASHING_ENV, "1")
    cheap = sec.hash_password("county-pass-1")
    assert "$m=8,t=1,p=1$" in cheap
    assert sec.verify_password(vetted, "county-pass-1") and not sec.verify_password(cheap, "county-pass-2")
    monkeypatch.delenv(sec.INSECURE_TEST_HASHING_ENV)
    assert sec.verify_password(cheap, "county-pass-1")  # the cost is read from the stored hash
    sec.dummy_verify()


def test_doctor_reports_the_test_only_profile_as_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from countylab.config import Settings
    from countylab.doctor import check_settings

    settings = Settings(data_dir=tmp_path)
    monkeypatch.setenv(sec.INSECURE_TEST_HASHING_ENV, "1")
    found = {c.name: c for c in check_settings(settings)}
    assert found["settings.password_hashing"].status == "fail"
    monkeypatch.delenv(sec.INSECURE_TEST_HASHING_ENV)
    assert "settings.password_hashing" not in {c.name for c in check_settings(settings)}
