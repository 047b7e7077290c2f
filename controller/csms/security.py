"""OCPP security profiles 1 and 2 and the listener's connection limits.

Profile 1: HTTP Basic authentication in the WebSocket handshake, the charger id as the username and
its AuthorizationKey as the password. Profile 2: the same over TLS (wss://). Everything here is
synchronous and cheap: 300 chargers reconnecting at once after a restart must not queue behind it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
import string
from collections import Counter
from pathlib import Path

from controller.config import Config, ConfigError

HASH_SCHEME = "sha256"
SALT_BYTES = 16


class _TlsProblem(Exception):
    """The certificate or key cannot be used; the message names the config key and the file."""


# -- password hashes -----------------------------------------------------------------------------


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


def basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    """(username, password) from an `Authorization: Basic ...` header, None if absent or malformed."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        user, sep, password = decoded.partition(b":")
        return (user, password) if sep else None
    return None


def check_basic_auth(headers: list[tuple[bytes, bytes]], charger_id: str, *,
                     password: str | None, password_hash: str | None) -> str | None:
    """None if the handshake carries this charger's credentials, else why not (safe to log)."""
    credentials = basic_credentials(headers)
    if credentials is None:
        return "no valid Basic credentials"
    user, received = credentials
    user_ok = hmac.compare_digest(user, charger_id.encode("utf-8"))
    password_ok = password_matches(received, password=password, password_hash=password_hash)
    if not user_ok:
        return "username does not match the charger id"
    return None if password_ok else "wrong password"


# -- TLS -----------------------------------------------------------------------------------------


def _read_pem(path: Path, key: str, marker: bytes) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _TlsProblem(f"ocpp.{key}: cannot read {path}: {exc.strerror or exc}") from exc
    if marker not in data:
        raise _TlsProblem(f"ocpp.{key}: {path} is not a PEM file with a {marker.decode().strip('-')}")


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _TlsProblem("the key is encrypted; the controller needs an unencrypted key file")


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later, as the OCPP 1.6 security whitepaper asks) for wss://."""
    _read_pem(cert, "tls_cert", b"-----BEGIN CERTIFICATE-----")
    _read_pem(key, "tls_key", b"PRIVATE KEY-----")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _TlsProblem as exc:
        raise _TlsProblem(f"ocpp.tls_key: {key}: {exc}") from None
    except ssl.SSLError as exc:
        raise _TlsProblem(f"ocpp.tls_cert, ocpp.tls_key: {cert} and {key} are not a usable certificate"
                             f" and matching key: {exc.reason or exc}") from exc
    return context


def ocpp_tls_context(config: Config) -> ssl.SSLContext | None:
    """The listener's TLS context from [ocpp] tls_cert / tls_key (None: plain ws://).

    Raises ConfigError naming the config file, the key and the PEM file, so a bad path stops
    `evedge run` and `evedge check-config` before anything listens.
    """
    files = config.ocpp_tls_files
    if files is None:
        return None
    try:
        return tls_context(*files)
    except _TlsProblem as exc:
        raise ConfigError(f"{config.source or 'config'}: {exc}") from None


# -- connection limits ---------------------------------------------------------------------------


class AddressLimiter:
    """Open OCPP connections per source IP, so one host cannot take every slot the Pi has."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def try_acquire(self, address: str, *, replacing: bool = False) -> bool:
        """Take a slot; `replacing`: the new connection will close one from the same address, so
        a charger reconnecting behind a full NAT is not locked out by its own stale connection."""
        if self.open[address] >= self.limit + (1 if replacing else 0):
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]
