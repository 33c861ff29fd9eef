"""The Ed25519 key that signs audit checkpoints, kept outside the database.

Why a signature and not just the hash chain: whoever can write the database file can also
recompute every hash of a rewritten chain.  They cannot produce a signature without the
private key, which lives in a file the database owner should not be able to read (the
operator moves ``audit_key_file`` there).  The public key is written beside it as ``.pub``
(hex), and can be pinned in ``audit_public_key`` so that a swapped key file is noticed.

The private key never enters the database, the witness or any log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from countylab.errors import UserError


def public_hex(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint named in every witness line, so a reader sees which key signed it."""
    return hashlib.sha256(bytes.fromhex(public_hex(key))).hexdigest()[:16]


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from its 64 hex digits (the .pub file, the setting or ``--public-key``)."""
    value = text.strip().lower()
    try:
        raw = bytes.fromhex(value)
        if len(raw) != 32:
            raise ValueError(value)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise UserError(
            "审计公钥格式有误：应为 64 位十六进制数",
            "Invalid audit public key: expected 64 hexadecimal digits",
        ) from exc


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The signing key at ``path``; created with mode 0600 on first use.

    Two processes may start at once: each writes a complete key to a private temporary file
    and links it into place; the loser of the race reads the winner's key, so every process
    signs with the same key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"无法读取审计签名密钥 {path}：{exc}",
            f"Cannot read the audit signing key {path}: {exc}",
        ) from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise UserError(
            f"审计签名密钥 {path} 不是 Ed25519 密钥", f"The audit signing key {path} is not an Ed25519 key"
        )
    pub = public_path(path)
    if not pub.exists():
        pub.write_text(public_hex(loaded.public_key()) + "\n")
        pub.chmod(0o644)
    return loaded


def trusted_public_key(pinned: str, private_path: Path) -> Ed25519PublicKey | None:
    """The key ``verify`` trusts: the pinned one, else the .pub file, else the private key's.

    ``None`` when no key exists at all (no checkpoint has ever been written here).
    """
    if pinned.strip():
        return parse_public(pinned)
    pub = public_path(private_path)
    try:
        if pub.exists():
            return parse_public(pub.read_text())
        if private_path.exists():
            return load_or_create(private_path).public_key()
    except OSError as exc:  # the key folder was moved out of this process's reach: pin the key
        raise UserError(
            f"无法读取审计公钥 {pub}：请在 audit_public_key 中设置公钥",
            f"Cannot read the audit public key {pub}: set audit_public_key",
        ) from exc
    return None


def signature_ok(key: Ed25519PublicKey, signature_hex: str, body: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), body)
    except (InvalidSignature, ValueError):
        return False
    return True
