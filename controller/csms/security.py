"""OCPP security profiles 1 and 2 and the listener's connection limits.

Profile 1: HTTP Basic authentication in the WebSocket handshake, the charger id as the username and
its AuthorizationKey as the password. Profile 2: the same over TLS (wss://). Everything here is
synchronous and cheap: 300 chargers reconnecting at once after a restart must not queue behind it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
from collections import Counter
from pathlib import Path

from controller.config import Config, ConfigError
from controller.passwords import password_matches


class _TlsProblem(Exception):
    """The certificate or key cannot be used; the message names the config key and the file."""


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
        raise _TlsProblem(f"{key}: cannot read {path}: {exc.strerror or exc}") from exc
    if marker not in data:
        raise _TlsProblem(f"{key}: {path} is not a PEM file with a {marker.decode().strip('-')}")


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _TlsProblem("the key is encrypted; the controller needs an unencrypted key file")


def tls_context(cert: Path, key: Path, section: str = "ocpp") -> ssl.SSLContext:
    """A server context (TLS 1.2 or later, as the OCPP 1.6 security whitepaper asks) for wss://;
    problems name `section`'s tls_cert / tls_key."""
    _read_pem(cert, f"{section}.tls_cert", b"-----BEGIN CERTIFICATE-----")
    _read_pem(key, f"{section}.tls_key", b"PRIVATE KEY-----")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _TlsProblem as exc:
        raise _TlsProblem(f"{section}.tls_key: {key}: {exc}") from None
    except ssl.SSLError as exc:
        raise _TlsProblem(f"{section}.tls_cert, {section}.tls_key: {cert} and {key} are not a usable certificate"
                             f" and matching key: {exc.reason or exc}") from exc
    return context


def check_public_tls(config: Config) -> None:
    """[public_charging] tls_cert / tls_key, when set, are a usable certificate and key: else
    ConfigError naming the key and the file (the public listener's server loads them itself)."""
    files = config.public_tls_files
    if files is None:
        return
    try:
        tls_context(*files, section="public_charging")
    except _TlsProblem as exc:
        raise ConfigError(f"{config.source or 'config'}: {exc}") from None


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
