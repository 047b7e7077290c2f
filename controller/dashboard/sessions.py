"""Signing in to the dashboard: an API key is exchanged for a random session cookie.

The cookie holds a random token; the books keep only its SHA-256 (a copy of the database signs
nobody in), the SHA-256 of the key it was made from, its CSRF token and its expiry. The role is
read from the live config on every request, so removing a key from the file (and a SIGHUP)
ends its sessions at once, and a key moved to `read_only_api_keys` loses its buttons. Sessions
survive a restart of the controller, so an open page reconnects without signing in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from controller.api.auth import Role
from controller.config import ApiSection
from controller.store import Store
from controller.store import dashboard as q
from controller.timefmt import iso, now_iso, utcnow

COOKIE = "evedge_session"
TTL_S = 12 * 3600
"""A session lasts a working day; then the key is asked for again."""


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def role_of_digest(api: ApiSection, key_digest: str) -> Role | None:
    """The role the key with this digest has in the config now; compares against every key."""
    operator = [hmac.compare_digest(key_digest, digest(key)) for key in api.api_keys if key]
    read_only = [hmac.compare_digest(key_digest, digest(key)) for key in api.read_only_api_keys if key]
    return "operator" if any(operator) else "read-only" if any(read_only) else None


@dataclass(frozen=True)
class Session:
    token: str
    role: Role
    csrf: str

    @property
    def operator(self) -> bool:
        return self.role == "operator"


class Sessions:
    """The one owner of the `dashboard_sessions` rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def sign_in(self, api: ApiSection, key: str) -> Session | None:
        """A new session for a valid key; None for a wrong one (nothing is stored then)."""
        key_digest = digest(key)
        role = role_of_digest(api, key_digest) if key else None
        if role is None:
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = iso(utcnow() + timedelta(seconds=TTL_S))
        await self.store.write(q.add_session, digest(token), key_digest, csrf, expires)
        return Session(token, role, csrf)

    async def find(self, api: ApiSection, token: str | None) -> Session | None:
        """The live session of a cookie's token: None if unknown, expired, or its key is gone."""
        if not token or len(token) > 100:
            return None
        row = await self.store.read(q.get_session, digest(token))
        if row is None or row["expires_at"] < now_iso():
            return None
        role = role_of_digest(api, row["key_digest"])
        return Session(token, role, row["csrf"]) if role is not None else None

    async def sign_out(self, token: str) -> None:
        await self.store.write(q.delete_session, digest(token))
