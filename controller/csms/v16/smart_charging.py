"""OCPP 1.6 Smart Charging: the domain's limits as SetChargingProfile payloads.

Two kinds, both in amps per phase (chargingRateUnit "A"):

- the default limit: a `TxDefaultProfile` on connector 0 (every connector), relative to each
  charge's start and without a duration, so it stays in force when the controller is gone;
- a charge's limit: a `TxProfile` on the running transaction, absolute from now and with a
  schedule `duration`, so it lapses by itself (OCPP 1.6 3.13.6: an offline charger keeps a
  TxProfile for the whole transaction, so a limit without a duration would outlive us).

Each profile has a fixed id per purpose and connector: a new one replaces the last (1.6 3.13.2).
Every payload is checked against the 1.6 schema before it leaves.
"""

from __future__ import annotations

from controller.charging_profiles import FIRST_PROFILE_ID, MIN_STACK_LEVEL
from controller.config import MAX_CONNECTORS
from controller.csms.frames import CALL
from controller.csms.link import limit_amps
from controller.csms.v16.schemas import validate
from controller.timefmt import now_iso

DEFAULT_PROFILE_ID = 1
TRANSACTION_PROFILE_BASE = 1000  # + connector id
STACK_LEVEL = 0
# An operator's stored profiles (controller/charging_profiles.py) start above ours: neither replaces the other.
assert TRANSACTION_PROFILE_BASE + MAX_CONNECTORS < FIRST_PROFILE_ID and STACK_LEVEL < MIN_STACK_LEVEL


def _schedule(amps: float, phases: int, duration_s: int | None = None, start: str | None = None) -> dict:
    schedule: dict = {"chargingRateUnit": "A",
                      "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_amps(amps), "numberPhases": phases}]}
    if duration_s is not None:
        schedule["duration"] = int(duration_s)
    if start is not None:
        schedule["startSchedule"] = start
    return schedule


def default_profile(amps: float, phases: int) -> dict:
    payload = {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": DEFAULT_PROFILE_ID, "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
        "chargingSchedule": _schedule(amps, phases),
    }}
    validate(CALL, "SetChargingProfile", payload)
    return payload


def transaction_profile(connector_id: int, transaction_id: int, amps: float, phases: int, duration_s: int) -> dict:
    payload = {"connectorId": connector_id, "csChargingProfiles": {
        "chargingProfileId": TRANSACTION_PROFILE_BASE + connector_id, "transactionId": transaction_id,
        "stackLevel": STACK_LEVEL, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": _schedule(amps, phases, duration_s, now_iso()),
    }}
    validate(CALL, "SetChargingProfile", payload)
    return payload
