"""The secrets of a public session: the driver's token and the session's OCPP id tag.

The token is the driver's only credential (no account, no API key), so it is long and random
and only its SHA-256 is stored: a copy of the database does not let anyone act on a session.
The id tag is new for every session, so the charger's StartTransaction finds exactly one session.
"""

from __future__ import annotations

import hashlib
import secrets

MAX_TOKEN_LENGTH = 100
"""Longer strings are not tokens; they are refused before they are hashed."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """256 random bits, URL-safe."""
    return "pcs_" + secrets.token_urlsafe(32)


def new_id_tag() -> str:
    """A per-session OCPP id tag (20 characters, the CiString20 limit)."""
    return "PC" + secrets.token_hex(9).upper()


def new_uid() -> str:
    """The session's public, random name at the payment provider (idempotency keys, metadata)."""
    return secrets.token_hex(12)
