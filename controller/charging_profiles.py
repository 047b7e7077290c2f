"""Charging profiles an operator sets on a charger, kept as records.

The operator gives an OCPP 1.6 `csChargingProfiles` and a connector; it is checked against the 1.6
SetChargingProfile schema, stored, and sent. The records say what each charger holds as far as we
know (its last answer per profile); deleting one sends ClearChargingProfile. After a charger boots
every stored profile it had accepted (or never got) is sent again, transaction profiles excepted
(their transaction did not survive the reboot): a charger that lost them has them back, one that
kept them replaces each with itself.

They share the charger with load management's limits (controller/load_management/), which use
stack level 0 and profile ids below FIRST_PROFILE_ID (1: the default limit, 1000 + connector: a
charge's limit). Records take stack levels from 1 and ids from FIRST_PROFILE_ID, so neither side
replaces the other's. On a load-managed charger only ChargePointMaxProfile records are taken: they
can only lower what the charger draws, while a TxDefaultProfile or TxProfile at a higher stack
level would override the limits that keep the circuit under its fuse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from controller.charger_jobs import SETTLE_S, ChargerJobs
from controller.chargers import ChargerRegistry, ChargerState
from controller.errors import AnswerLost, ChargerOffline, Conflict, Invalid, NotFound
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import charging_profiles as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.charging_profiles")
FIRST_PROFILE_ID = 2000
MIN_STACK_LEVEL = 1
CAPPING = "ChargePointMaxProfile"
TRANSACTION = "TxProfile"
JOB = "charging-profiles"
PENDING = "pending"  # stored, not (yet) answered by the charger


@dataclass
class StoredProfile:
    charger_id: str
    connector_id: int
    profile: dict[str, Any]  # csChargingProfiles as the operator gave it
    status: str  # the charger's last answer (Accepted, Rejected, NotSupported) or pending
    sent_at: str | None
    created_at: str

    @property
    def profile_id(self) -> int:
        return int(self.profile["chargingProfileId"])

    @property
    def purpose(self) -> str:
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stackLevel"])


class ChargingProfiles:
    def __init__(self, config: LiveConfig, store: Store, chargers: ChargerRegistry, jobs: ChargerJobs) -> None:
        self.config = config
        self.store = store
        self.chargers = chargers
        self.jobs = jobs
        self.profiles: dict[str, dict[int, StoredProfile]] = {}
        chargers.boot_listeners.append(self._resend_soon)

    async def load(self) -> None:
        for row in await self.store.read(q.all_profiles):
            stored = StoredProfile(row["charger_id"], row["connector_id"], orjson.loads(row["profile"]), row["status"],
                                   row["sent_at"], row["created_at"])
            self.profiles.setdefault(stored.charger_id, {})[stored.profile_id] = stored

    def of(self, charger_id: str) -> list[StoredProfile]:
        self.chargers.require(charger_id)
        return sorted(self.profiles.get(charger_id, {}).values(), key=lambda p: p.profile_id)

    async def add(self, charger_id: str, connector_id: int, profile: dict[str, Any]) -> StoredProfile:
        """Check, store and send one profile (replacing a record with its id); offline, it is
        stored as pending and sent when the charger next boots."""
        state = self.chargers.require(charger_id)
        self._check(state, connector_id, profile)
        stored = StoredProfile(charger_id, connector_id, profile, PENDING, None, now_iso())
        await self._store(stored)
        if state.link is not None:
            await self._send(state, stored)
        return stored

    def _check(self, state: ChargerState, connector_id: int, profile: dict[str, Any]) -> None:
        check = self.chargers.protocol(state).check_charging_profile
        if check is None:
            raise Conflict(f"charger {state.id} speaks {state.protocol}: charging profile records are OCPP 1.6"
                           " profiles; use the operations endpoint", "ProtocolNotSupported")
        if not state.accepts_connector(connector_id):
            raise Invalid(f"connectorId: charger {state.id} has no connector {connector_id}")
        check(connector_id, profile)
        if profile["chargingProfileId"] < FIRST_PROFILE_ID:
            raise Invalid(f"csChargingProfiles.chargingProfileId: from {FIRST_PROFILE_ID} up (lower ids are load"
                          " management's)")
        if profile["stackLevel"] < MIN_STACK_LEVEL:
            raise Invalid(f"csChargingProfiles.stackLevel: from {MIN_STACK_LEVEL} up (stack level 0 is load"
                          " management's)")
        charger = self.config.current.charger(state.id)
        if charger is not None and charger.circuit is not None and profile["chargingProfilePurpose"] != CAPPING:
            raise Conflict(f"charger {state.id} is load-managed (circuit {charger.circuit}): only {CAPPING}"
                           " profiles, which can only lower its limit, are taken", "LoadManaged")

    async def _store(self, stored: StoredProfile) -> None:
        await self.store.write(q.put_profile, stored.charger_id, stored.profile_id, stored.connector_id, stored.purpose,
                               stored.stack_level, orjson.dumps(stored.profile).decode(), stored.status,
                               stored.sent_at, stored.created_at)
        self.profiles.setdefault(stored.charger_id, {})[stored.profile_id] = stored

    async def _send(self, state: ChargerState, stored: StoredProfile) -> None:
        if state.link is None:
            raise ChargerOffline(state.id)
        try:
            stored.status = await state.link.set_charging_profile(stored.connector_id, stored.profile)
        except AnswerLost:
            stored.status = PENDING  # it may hold it; sent again at its next boot
            raise
        finally:
            stored.sent_at = now_iso()
            await self._store(stored)
        if stored.status == "Accepted":
            await self._drop_replaced(stored)
        log.info("charger=%s charging profile %d: %s", state.id, stored.profile_id, stored.status)

    async def _drop_replaced(self, stored: StoredProfile) -> None:
        """A profile replaces one of the same purpose and stack level on the same connector (1.6 3.13.2)."""
        for other in list(self.profiles.get(stored.charger_id, {}).values()):
            if other is not stored and (other.connector_id, other.purpose, other.stack_level) == (
                    stored.connector_id, stored.purpose, stored.stack_level):
                await self._forget(other)

    async def _forget(self, stored: StoredProfile) -> None:
        await self.store.write(q.delete_profile, stored.charger_id, stored.profile_id)
        self.profiles.get(stored.charger_id, {}).pop(stored.profile_id, None)

    async def remove(self, charger_id: str, profile_id: int) -> str:
        """ClearChargingProfile for a stored profile; the record goes once the charger answers
        Accepted or Unknown (it does not hold it)."""
        stored = self.profiles.get(charger_id, {}).get(profile_id)
        if stored is None:
            self.chargers.require(charger_id)
            raise NotFound("ChargingProfile", profile_id)
        answer = await self.chargers.online_link(charger_id).clear_charging_profile(profile_id)
        if answer in ("Accepted", "Unknown"):
            await self._forget(stored)
        return answer

    # -- after a boot ---------------------------------------------------------------------------

    def _resend_soon(self, state: ChargerState) -> None:
        if any(p.purpose != TRANSACTION for p in self.profiles.get(state.id, {}).values()):
            self.jobs.submit(state.id, JOB, lambda: self.resend(state.id), delay_s=SETTLE_S)

    async def resend(self, charger_id: str) -> None:
        state = self.chargers.get(charger_id)
        if state is None:
            return
        for stored in list(self.profiles.get(charger_id, {}).values()):
            if stored.purpose != TRANSACTION and stored.status in ("Accepted", PENDING):
                await self._send(state, stored)
