"""The transaction lifecycle: pending -> active -> stopping -> completed (or failed).

`pending` is a remote start the charger accepted; the row's id is the transactionId the charger
gets when StartTransaction arrives on that connector. Every answer that tells a charger something
is stored (StartTransaction.conf, StopTransaction.conf) is sent only after the commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
import logging
import sqlite3
from datetime import timedelta

import orjson
import trio

from controller.authorization import Authorization
from controller.chargers import ChargerRegistry, ChargerState
from controller.config import Config
from controller.csms.frames import OcppError
from controller.csms.rpc import CallTimeout, ConnectionLost, NotConnected
from controller.errors import (AnswerLost, ChargerDisconnected, ChargerOffline, ChargerRejected, ChargerTimeout,
                               ConnectorNotReady, DomainError, Invalid, NotFound, NotInTransaction)
from controller.store import Store
from controller.store.db import StorageUnavailable
from controller.store import transactions as q
from controller.store.chargers import record_meter
from controller.store.outbox import insert_events
from controller.timefmt import iso, normalize, parse_iso, utcnow
from controller.upstream.events import Events
from controller.upstream.events import record as record_events

log = logging.getLogger("evedge.transactions")

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
_TO_WH = {"Wh": 1.0, "kWh": 1000.0}
_TO_W = {"W": 1.0, "kW": 1000.0}
LIVE_S = 120  # a charger's reading older than this is history, not the meter's present state


def _timestamp(text: str, field: str) -> str:
    try:
        return normalize(text)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range to UTC
        raise OcppError("TypeConstraintViolation", f"{field}: not an ISO 8601 date-time") from None


def latest_energy_and_power(meter_value: list[dict]) -> tuple[float | None, float | None]:
    """The last register reading (Wh) and power (W) among sampled values of any context."""
    energy = power = None
    for mv in meter_value:
        for sv in mv.get("sampledValue", []):
            measurand = sv.get("measurand", ENERGY)
            if sv.get("phase"):
                continue  # totals only
            try:
                value = float(sv["value"])
            except (KeyError, ValueError):
                continue
            if measurand == ENERGY and sv.get("unit", "Wh") in _TO_WH:
                energy = value * _TO_WH[sv.get("unit", "Wh")]
            elif measurand == POWER and sv.get("unit", "W") in _TO_W:
                power = value * _TO_W[sv.get("unit", "W")]
    return energy, power


def transaction_begin(data: list[dict] | None) -> tuple[str | None, float | None]:
    """(timestamp, Wh) of the `Transaction.Begin` register reading in StopTransaction's transactionData.

    Books a stop whose StartTransaction we never got with its real start; (None, None) without one.
    """
    for mv in data or []:
        begin = [sv for sv in mv.get("sampledValue", []) if sv.get("context") == "Transaction.Begin"]
        wh, _ = latest_energy_and_power([{"sampledValue": begin}])
        if wh is not None:
            try:
                return normalize(mv["timestamp"]), wh
            except (ValueError, OverflowError):
                return None, None
    return None, None


class Transactions:
    def __init__(self, config: Config, store: Store, chargers: ChargerRegistry,
                 authorization: Authorization, events: Events) -> None:
        self.config = config
        self.store = store
        self.chargers = chargers
        self.authorization = authorization
        self.events = events
        # Public charging (controller/public_charging/sessions.py): `transaction_changed(conn, kind, row)`
        # runs inside the StartTransaction/StopTransaction write and returns the `payment` object.
        self.listener = None
        # Site (controller/site.py), only with connector meters: `energy_source(charger_id, connector_id)
        # -> (Wh | None, online)`, the connector meter's latest register reading for chargers with
        # `meter = "connector-meter"`; (None, False) for the others. See start_energy, booked_energy.
        self.energy_source: Callable[[str, int], tuple[float | None, bool]] | None = None

    # -- REST side --------------------------------------------------------------------------

    def _online(self, charger_id: str) -> ChargerState:
        state = self.chargers.get(charger_id)
        if state is None:
            raise NotFound("Charger", charger_id)
        if state.session is None:
            raise ChargerOffline(charger_id)
        return state

    async def call(self, state: ChargerState, action: str, payload: dict) -> dict:
        """Call the charger, turning transport failures into API problems."""
        session = state.session
        if session is None:
            raise ChargerOffline(state.id)
        try:
            answer = await session.call(action, payload)
            if action == "UnlockConnector" and isinstance(answer, dict) and answer.get("status") == "Unlocked":
                await record_events(self.store, self.events.unlocked(state.id, payload["connectorId"]))
            return answer
        except CallTimeout:
            raise ChargerTimeout(f"charger {state.id} did not answer {action} in time") from None
        except NotConnected:
            raise ChargerOffline(state.id) from None
        except ConnectionLost:
            raise ChargerDisconnected(f"charger {state.id} disconnected before answering") from None

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str, mode: str = "api",
                           require_preparing: bool = True) -> dict:
        """`require_preparing=False` (card taps) also sends to an Available connector: the charger
        accepts and waits for the cable (until ocpp.remote_start_timeout_s marks it failed)."""
        state = self._online(charger_id)
        if state.connector_count is not None and not 1 <= connector_id <= state.connector_count:
            raise Invalid(f"charger {charger_id} has no connector {connector_id}", "ConnectorNotValid")
        status = state.connector(connector_id).status
        if not require_preparing and status not in ("Available", "Preparing"):
            raise ConnectorNotReady(connector_id, status, need_plug=False)
        if require_preparing and status != "Preparing":
            raise ConnectorNotReady(connector_id, status, need_plug=True)
        # The pending row exists before the call, so a StartTransaction racing the answer finds it.
        transaction_id = await self.store.write(q.create_pending, charger_id, connector_id, id_tag, mode)
        try:
            answer = await self.call(state, "RemoteStartTransaction", {"connectorId": connector_id, "idTag": id_tag})
        except AnswerLost:
            # The charger may have accepted and start any moment (its answer got lost): the row
            # stays pending, so its StartTransaction gets this id and the tag is accepted, until
            # ocpp.remote_start_timeout_s marks it failed (expire_pending_forever).
            raise
        except (DomainError, OcppError) as exc:
            await self._fail_start(transaction_id, "NotSent")
            if isinstance(exc, OcppError):
                raise ChargerRejected(f"charger answered {exc.code}: {exc.description}") from None
            raise
        if not isinstance(answer, dict) or answer.get("status") != "Accepted":  # a charger may answer anything
            await self._fail_start(transaction_id, "Rejected")
            raise ChargerRejected(f"charger {charger_id} rejected the remote start")
        return {"transactionId": transaction_id, "chargeBoxId": charger_id, "connectorId": connector_id}

    async def _fail_start(self, transaction_id: int, reason: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            q.set_status(conn, transaction_id, "failed", reason)
            insert_events(conn, self.events.start(q.get(conn, transaction_id), accepted=False))

        await self.store.write(write)

    async def remote_stop(self, transaction_id: int) -> dict:
        row = await self.store.read(q.get, transaction_id)
        if row is None:
            raise NotFound("Transaction", transaction_id)
        if row["status"] not in ("active", "stopping"):
            raise NotInTransaction(f"transaction {transaction_id} is {row['status']}, not active")
        state = self._online(row["charger_id"])
        answer = await self.call(state, "RemoteStopTransaction", {"transactionId": transaction_id})
        if not isinstance(answer, dict) or answer.get("status") != "Accepted":
            await record_events(self.store, self.events.stop_rejected(await self.store.read(q.get, transaction_id)))
            raise ChargerRejected(f"charger {row['charger_id']} rejected the remote stop")
        await self.store.write(self._mark_stopping, transaction_id)
        return {"transactionId": transaction_id, "chargeBoxId": row["charger_id"]}

    @staticmethod
    def _mark_stopping(conn: sqlite3.Connection, transaction_id: int) -> None:
        row = q.get(conn, transaction_id)
        if row is not None and row["status"] == "active":  # StopTransaction may have come first
            q.set_status(conn, transaction_id, "stopping")

    async def get(self, transaction_id: int) -> dict:
        row = await self.store.read(q.get, transaction_id)
        if row is None:
            raise NotFound("Transaction", transaction_id)
        return transaction_to_api(row, detail=True)

    async def page(self, charger_id: str | None, status: str | None, limit: int, offset: int) -> dict:
        rows, total = await self.store.read(q.page, charger_id, status, limit, offset)
        return {
            "transactions": [transaction_to_api(r, detail=False) for r in rows],
            "pagination": {"total": total, "limit": limit, "offset": offset},
        }

    # -- charger side -----------------------------------------------------------------------

    async def on_authorize(self, charger_id: str, id_tag: str) -> dict:
        """IdTagInfo for an Authorize; a tag we just asked this charger to start with is Accepted.

        Chargers with AuthorizeRemoteTxRequests=true authorize the tag of a remote start before
        starting; refusing our own (API, card-reader or public-session) tag would undo the start.
        """
        info = self.authorization.id_tag_info(id_tag)
        if info["status"] not in ("Accepted", "Blocked") and await self.store.read(q.has_pending_tag, charger_id, id_tag):
            info = {**info, "status": "Accepted"}
        return info

    def start_energy(self, charger_id: str, connector_id: int, charger_wh: float,
                     at: str) -> tuple[float, str | None]:
        """(meterStart to book, energy source) of a new transaction.

        A transaction books its energy from one source from start to stop, as mixing two registers
        would book nonsense: the connector meter ("meter") when one is configured, online and the
        start is live (not a backlog entry more than LIVE_S old), else the charger's own (None).
        """
        if self.energy_source is None or at < iso(utcnow() - timedelta(seconds=LIVE_S)):
            return charger_wh, None
        wh, online = self.energy_source(charger_id, connector_id)
        return (round(wh), "meter") if wh is not None and online else (charger_wh, None)

    def booked_energy(self, charger_id: str, connector_id: int, charger_wh: float | None, at: str,
                      source: str | None) -> float | None:
        """The reading to book at `at` for a transaction whose energy comes from `source`; None:
        nothing new to book (keep the last).

        A "meter" transaction books the meter's latest reading, even while the meter is offline
        (the energy since is missed, never invented), and nothing for a backlog reading more than
        LIVE_S old: the meter only knows the register now, not then. `energy_source` is a plain
        attribute read, safe in the store's thread.
        """
        if source != "meter" or self.energy_source is None:
            return charger_wh
        if at < iso(utcnow() - timedelta(seconds=LIVE_S)):
            return None
        wh, online = self.energy_source(charger_id, connector_id)
        if wh is not None and not online:
            log.warning("charger=%s connector=%s: connector meter offline; booking its last reading",
                        charger_id, connector_id)
        return round(wh) if wh is not None else None

    async def on_start(self, charger_id: str, payload: dict) -> dict:
        start_time = _timestamp(payload["timestamp"], "timestamp")
        id_tag = payload["idTag"]
        connector_id = payload["connectorId"]
        info = self.authorization.id_tag_info(id_tag)
        key_source = f"{charger_id}|{connector_id}|{id_tag}|{start_time}|{payload['meterStart']}"
        start_key = hashlib.sha256(key_source.encode()).hexdigest()

        def write(conn: sqlite3.Connection) -> sqlite3.Row:
            # A charge we asked for is accepted even for a tag that is not on the local list.
            asked_for = q.pending_for_connector(conn, charger_id, connector_id, id_tag) is not None
            status = "Accepted" if asked_for and info["status"] != "Blocked" else info["status"]
            meter_start, source = self.start_energy(charger_id, connector_id, payload["meterStart"], start_time)
            row, created = q.begin(
                conn, charger_id=charger_id, connector_id=connector_id, id_tag=id_tag, id_tag_status=status,
                meter_start=meter_start, start_time=start_time, reservation_id=payload.get("reservationId"),
                start_key=start_key, default_mode="local", energy_source=source,
            )
            if created:
                payment = self.listener.transaction_changed(conn, "start", row) if self.listener else None
                insert_events(conn, self.events.start(row, accepted=status == "Accepted", payment=payment))
            return row

        row = await self.store.write(write)
        status = row["id_tag_status"]
        log.info("charger=%s connector=%s transaction=%s started id_tag=%s status=%s",
                 charger_id, connector_id, row["id"], id_tag, status)
        return {"transactionId": row["id"], "idTagInfo": {**info, "status": status}}

    async def on_stop(self, charger_id: str, payload: dict) -> dict:
        stop_time = _timestamp(payload["timestamp"], "timestamp")
        data = payload.get("transactionData")
        begin_time, begin_wh = transaction_begin(data)

        def write(conn: sqlite3.Connection) -> tuple[sqlite3.Row, bool]:
            before = q.get(conn, payload["transactionId"])
            meter_stop = payload["meterStop"]
            if before is not None and before["charger_id"] == charger_id:
                meter_stop = self.booked_energy(charger_id, before["connector_id"], meter_stop, stop_time,
                                                before["energy_source"])
            row, known, new = q.finish(
                conn, transaction_id=payload["transactionId"], charger_id=charger_id,
                meter_stop=meter_stop,
                stop_time=stop_time, reason=payload.get("reason", "Local"),
                id_tag=payload.get("idTag"), transaction_data=orjson.dumps(data).decode() if data else None,
                start_time=begin_time, meter_start=begin_wh,
            )
            if new:  # not a re-sent StopTransaction
                payment = self.listener.transaction_changed(conn, "stop", row) if self.listener else None
                insert_events(conn, self.events.stop(row, payment=payment))
            return row, known

        row, known = await self.store.write(write)
        if not known:
            log.warning("charger=%s stopped transaction %s, not on the books as its own; recorded as transaction %s",
                        charger_id, payload["transactionId"], row["id"])
        log.info("charger=%s transaction=%s stopped reason=%s", charger_id, row["id"], row["stop_reason"])
        answer: dict = {}
        if payload.get("idTag"):
            answer["idTagInfo"] = self.authorization.id_tag_info(payload["idTag"])
        return answer

    async def on_meter_values(self, charger_id: str, payload: dict) -> dict:
        connector_id = payload["connectorId"]
        transaction_id = payload.get("transactionId")
        samples = [(_timestamp(mv["timestamp"], "meterValue.timestamp"),
                    orjson.dumps(mv["sampledValue"]).decode()) for mv in payload["meterValue"]]
        energy, power = latest_energy_and_power(payload["meterValue"])
        at = max(ts for ts, _ in samples) if samples else None
        state = self.chargers.get(charger_id)
        known_at = state.connector(connector_id).meter_at if state is not None else None
        # The connector's live reading only moves forward in time: a backlog replays old samples.
        live = at is not None and (energy is not None or power is not None) and (known_at is None or at >= known_at)

        def write(conn: sqlite3.Connection) -> None:
            booked = energy
            if transaction_id is not None and self.energy_source is not None:
                txn = q.get(conn, transaction_id)
                if txn is not None and txn["charger_id"] == charger_id and at is not None:
                    booked = self.booked_energy(charger_id, connector_id, energy, at, txn["energy_source"])
            q.add_meter_values(conn, charger_id, connector_id, transaction_id, samples, booked)
            if live:
                record_meter(conn, charger_id, connector_id, energy, power, at)

        await self.store.write(write)
        if state is not None and live:
            c = state.connector(connector_id)
            c.energy_wh = energy if energy is not None else c.energy_wh
            c.power_w = power if power is not None else c.power_w
            c.meter_at = at
        return {}

    async def expire_pending_forever(self) -> None:
        """Mark remote starts that never became a charge as failed."""
        timeout = self.config.ocpp.remote_start_timeout_s
        while True:
            await trio.sleep(min(timeout / 4, 30))
            cutoff = iso(utcnow() - timedelta(seconds=timeout))

            try:
                expired = await self.store.write(self._expire, cutoff)
            except StorageUnavailable as exc:  # the disk is full or read-only: try on the next round
                log.warning("cannot expire remote starts now: %s", exc)
                continue
            for row in expired:
                log.info("transaction=%s remote start never began: failed", row["id"])

    def _expire(self, conn: sqlite3.Connection, cutoff: str) -> list[sqlite3.Row]:
        rows = q.expire_pending(conn, cutoff)
        for row in rows:  # the upstream hears that the start it was waiting for did not happen
            insert_events(conn, self.events.start(row, accepted=False))
        return rows


def transaction_to_api(row: sqlite3.Row, detail: bool) -> dict:
    """A transaction in the API's shape (seed 001), from its stored row."""
    meter_start, meter_stop = row["meter_start"], row["meter_stop"]
    last = meter_stop if meter_stop is not None else row["meter_last"]
    energy = round((last - meter_start) / 1000, 3) if meter_start is not None and last is not None else None
    duration = None
    if row["start_time"]:
        end = parse_iso(row["stop_time"]) if row["stop_time"] else utcnow()
        duration = max(0, int((end - parse_iso(row["start_time"])).total_seconds() // 60))
    body = {
        "id": f"txn_{row['id']}",
        "transactionId": row["id"],
        "chargeBoxId": row["charger_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "status": row["status"],
    }
    if detail:
        body.update(meterStart=meter_start, meterStop=meter_stop)
    body.update(energyDelivered=energy, durationMinutes=duration,
                startTime=row["start_time"], stopTime=row["stop_time"])
    if detail:
        body.update(stopReason=row["stop_reason"], remoteStarted=bool(row["remote_started"]),
                    mode=row["mode"], idTagStatus=row["id_tag_status"], paymentAmount=row["payment_amount"])
    return body
