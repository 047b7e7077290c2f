"""OCPP 2.0.1 Smart Charging: the domain's limits as SetChargingProfile payloads.

The same two kinds as for 1.6 (amps per phase, chargingRateUnit "A"):

- the default limit: a `TxDefaultProfile` on EVSE 0 (the whole station), relative to each
  charge's start and without a duration, so it stays in force when the controller is gone;
- a charge's limit: a `TxProfile` naming the station's transactionId, absolute from now with a
  schedule `duration`, so it lapses by itself and the default applies again.

Each profile has a fixed id per purpose and EVSE: a new one replaces the last (2.0.1 K01.FR.05).
Every payload is checked against the 2.0.1 schema before it leaves.
"""

from __future__ import annotations

from controller.csms.frames import CALL
from controller.csms.link import limit_amps
from controller.csms.v201.schemas import validate
from controller.timefmt import now_iso

DEFAULT_PROFILE_ID = 1
TRANSACTION_PROFILE_BASE = 1000  # + EVSE id
STACK_LEVEL = 0


def _schedule(schedule_id: int, amps: float, phases: int, duration_s: int | None = None,
              start: str | None = None) -> list[dict]:
    schedule: dict = {"id": schedule_id, "chargingRateUnit": "A", "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": limit_amps(amps), "numberPhases": phases}]}
    if duration_s is not None:
        schedule["duration"] = int(duration_s)
    if start is not None:
        schedule["startSchedule"] = start
    return [schedule]


def default_profile(amps: float, phases: int) -> dict:
    payload = {"evseId": 0, "chargingProfile": {
        "id": DEFAULT_PROFILE_ID, "stackLevel": STACK_LEVEL, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": _schedule(DEFAULT_PROFILE_ID, amps, phases),
    }}
    validate(CALL, "SetChargingProfile", payload)
    return payload


def transaction_profile(evse_id: int, charger_transaction_id: str, amps: float, phases: int, duration_s: int) -> dict:
    profile_id = TRANSACTION_PROFILE_BASE + evse_id
    payload = {"evseId": evse_id, "chargingProfile": {
        "id": profile_id, "stackLevel": STACK_LEVEL, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute", "transactionId": charger_transaction_id,
        "chargingSchedule": _schedule(profile_id, amps, phases, duration_s, now_iso()),
    }}
    validate(CALL, "SetChargingProfile", payload)
    return payload
