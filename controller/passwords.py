"""Charger passwords (OCPP security profile 1's AuthorizationKey): salted hashes and constant-time checks.

A leaf: the config validates `password_hash` values with `parse_hash`, the OCPP listener checks
what a charger sends with `password_matches`, `evedge hash-password` makes the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

HASH_SCHEME = "sha256"
SALT_BYTES = 16


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`sha256$<salt hex>$<digest hex>`, the digest being SHA-256(salt + password as UTF-8).

    Why not a slow KDF (scrypt, argon2): an AuthorizationKey is 16-40 random characters, far too
    many to guess offline, so key stretching buys nothing; it would only burn the Pi's CPU when
    every charger on the site reconnects at once. The salt keeps equal keys from hashing equally.
    """
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode("utf-8")).hexdigest()
    return f"{HASH_SCHEME}${salt.hex()}${digest}"


def parse_hash(value: str) -> tuple[bytes, bytes]:
    """(salt, digest) of a `hash_password` string; ValueError naming the expected format."""
    scheme, _, rest = value.partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    try:
        if scheme != HASH_SCHEME:
            raise ValueError
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        raise ValueError("expected the output of `evedge hash-password` (sha256$<salt hex>$<digest hex>)") from None
    if not salt or len(digest) != hashlib.sha256().digest_size:
        raise ValueError("expected the output of `evedge hash-password` (sha256$<salt hex>$<digest hex>)")
    return salt, digest


def _candidates(received: bytes) -> list[bytes]:
    """The forms in which a charger may send its key: the text itself, or (OCPP 1.6 security
    whitepaper, AuthorizationKey is hexBinary) the raw bytes that the configured hex text denotes."""
    return [received, received.hex().encode(), received.hex().upper().encode()]


def password_matches(received: bytes, *, password: str | None = None, password_hash: str | None = None) -> bool:
    """Constant-time check of the password bytes from the Authorization header."""
    if password is not None:
        expected = [password.encode("utf-8")]
        if len(password) % 2 == 0 and all(c in string.hexdigits for c in password):
            expected.append(bytes.fromhex(password))  # a hex key sent as raw bytes
        # no short-circuit: every comparison runs whatever the outcome
        return sum(hmac.compare_digest(received, e) for e in expected) > 0
    if password_hash is not None:
        salt, digest = parse_hash(password_hash)
        return sum(hmac.compare_digest(hashlib.sha256(salt + c).digest(), digest)
                   for c in _candidates(received)) > 0
    return False
