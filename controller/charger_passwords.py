"""Changing a charger's password (OCPP security profile 1's AuthorizationKey) without locking it out.

A charger told a new key (1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables
SecurityCtrlr.BasicAuthPassword) answers Accepted and reconnects with it. So the new key is
stored, hashed, before it is sent; the old one (the stored one before it, or the config file's)
keeps working until the charger has connected with the new one, in case the charger did not take
it or has not reconnected yet. A charger that refuses the change keeps its old key, and so do we.

A stored key takes precedence over the config file's `password` / `password_hash` for that charger.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller.chargers import ChargerRegistry
from controller.errors import AnswerLost, ChargerRejected, Invalid
from controller.passwords import hash_password
from controller.store import Store
from controller.store import charger_passwords as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.passwords")
MIN_LENGTH, MAX_LENGTH = 16, 40  # OCPP 1.6 security whitepaper: AuthorizationKey
GENERATED_BYTES = 20  # 40 hex characters
TAKEN = ("Accepted", "RebootRequired")  # the charger took the new key (now, or at its next restart)


@dataclass(frozen=True)
class Rotation:
    password_hash: str  # the newest key
    previous_hash: str | None  # the key before it, when that was a stored one (None: the config file's)
    confirmed: bool  # the charger has connected with the newest


class ChargerPasswords:
    def __init__(self, store: Store, chargers: ChargerRegistry) -> None:
        self.store = store
        self.chargers = chargers
        self.rotations: dict[str, Rotation] = {}
        chargers.password_keeper = self

    async def load(self) -> None:
        for row in await self.store.read(q.all_passwords):
            self.rotations[row["charger_id"]] = Rotation(row["password_hash"], row["previous_hash"],
                                                         row["confirmed_at"] is not None)

    def get(self, charger_id: str) -> Rotation | None:
        return self.rotations.get(charger_id)

    @staticmethod
    def generate() -> str:
        return secrets.token_hex(GENERATED_BYTES)

    async def rotate(self, charger_id: str, password: str | None) -> str:
        """Give a connected charger a new key (a random one when None); returns the key."""
        password = password if password is not None else self.generate()
        link = self.chargers.online_link(charger_id)
        answer = await self.change(charger_id, password, lambda: link.change_password(password), link.password_status)
        if link.password_status(answer) not in TAKEN:
            raise ChargerRejected(f"charger {charger_id} answered {link.password_status(answer)} to its new password;"
                                  " it keeps the old one")
        return password

    async def change(self, charger_id: str, password: str, send: Callable[[], Awaitable[Any]],
                     status_of: Callable[[Any], str | None]) -> Any:
        """Store `password` as the charger's newest key, then `send` it; returns the charger's
        answer (`status_of` reads it). A refusal puts the previous key back."""
        if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            raise Invalid(f"password: {MIN_LENGTH} to {MAX_LENGTH} characters")
        before = self.rotations.get(charger_id)
        previous = before.password_hash if before is not None and before.confirmed else (
            before.previous_hash if before is not None else None)
        await self._put(charger_id, Rotation(hash_password(password), previous, False))
        try:
            answer = await send()
        except AnswerLost:
            log.warning("charger=%s: no answer to its new password; the old one still works until it connects"
                        " with the new", charger_id)
            raise
        except Exception:
            await self._restore(charger_id, before)
            raise
        if status_of(answer) not in TAKEN:
            await self._restore(charger_id, before)
            return answer
        log.info("charger=%s accepted a new password; the old one works until it connects with the new", charger_id)
        return answer

    async def connected_with_newest(self, charger_id: str) -> None:
        """The charger connected with its newest key: the old one stops working."""
        rotation = self.rotations.get(charger_id)
        if rotation is not None and not rotation.confirmed:
            await self._put(charger_id, Rotation(rotation.password_hash, None, True))
            log.info("charger=%s connected with its new password; the old one no longer works", charger_id)

    async def _restore(self, charger_id: str, before: Rotation | None) -> None:
        if before is None:
            await self.store.write(q.delete_password, charger_id)
            self.rotations.pop(charger_id, None)
        else:
            await self._put(charger_id, before)

    async def _put(self, charger_id: str, rotation: Rotation) -> None:
        await self.store.write(q.put_password, charger_id, rotation.password_hash, rotation.previous_hash,
                               now_iso(), now_iso() if rotation.confirmed else None)
        self.rotations[charger_id] = rotation
