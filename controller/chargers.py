"""What the controller knows about each charger: registration, connection and connectors.

The registry is the live picture (who is connected, which link to call through) and the one owner
of the charger and connector rows: the store keeps the durable part (boot info, last status and
meter reading per connector) so the API shows the same picture after a restart.

Nothing here speaks a protocol. A protocol adapter (controller/csms/v16/, ...) turns what a
charger says into the plain values below and implements `ChargerLink` to carry our commands back;
`Protocol` describes what a version offers an operator and how its connector states read.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol as Interface

import orjson
import trio

from controller.config import MAX_CONNECTORS
from controller.errors import ChargerOffline, Conflict, DomainError, NotFound
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import chargers as q
from controller.timefmt import iso, now_iso, utcnow
from controller.upstream.events import Events
from controller.upstream.events import record as record_events

log = logging.getLogger("evedge.chargers")
DEFAULT_PROTOCOL = "ocpp1.6"
_UNUSABLE_IN_IDS = ("/", "\\", "..")


def usable_charger_id(charger_id: str) -> bool:
    """Whether an id can name a charger everywhere: a charger listed under an id holding `/`, `\\`
    or `..` (or a control character) could never be named in `/api/v1/chargers/{id}`, so no
    operator could approve, reject or command it; nor could "." (clients resolve it away)."""
    return (bool(charger_id) and charger_id != "." and not any(part in charger_id for part in _UNUSABLE_IN_IDS)
            and all(c >= " " and c != "\x7f" for c in charger_id))
LIVE_CURRENT_S = 120  # a current reading older than this when it arrives is a replayed backlog


class Availability(enum.Enum):
    """A connector's state in the domain's words, whatever the protocol calls it."""

    FREE = "free"              # nothing plugged in, ready for a car
    PLUGGED = "plugged"        # a cable is in and no charge runs yet: a start can begin at once
    BUSY = "busy"              # a charge runs, or is ending
    RESERVED = "reserved"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"


class ChargerLink(Interface):
    """Our commands to one connected charger, in plain values; one implementation per protocol.

    Each call raises ChargerOffline (never sent), ChargerTimeout or ChargerDisconnected (sent,
    no answer) or ChargerCallError (the charger answered with an error); the boolean answers say
    whether the charger accepted.
    """

    protocol: str
    address: str | None

    async def remote_start(self, connector_id: int, id_tag: str, remote_start_id: int) -> bool:
        """Ask for a charge; `remote_start_id` is our pending transaction's id (chargers that name
        their own transactions echo it in their start)."""

    async def remote_stop(self, transaction_id: int, charger_transaction_id: str | None) -> bool:
        """Ask to end a charge: our id, and the charger's own id when it assigned one."""

    async def unlock(self, connector_id: int) -> bool: ...

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        """The limit (per phase, amps) every charge starts with and falls back to when no other
        limit is in force: kept by the charger, also when the controller is gone."""

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int) -> bool:
        """A limit (per phase, amps) on one running charge for `duration_s` from now; after that
        the default limit applies again unless it is renewed."""

    async def trigger_boot(self) -> bool:
        """Ask the charger to announce itself (boot) now, rather than at its next retry."""

    async def call(self, action: str, payload: dict) -> Any:
        """A raw operation for the operator's endpoint, checked by `Protocol.check_operation` first."""

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class Protocol:
    """What one protocol version offers above its adapter."""

    name: str  # the WebSocket subprotocol: "ocpp1.6"
    operations: frozenset[str]  # what an operator may send raw through the operations endpoint
    check_operation: Callable[[str, dict], None]  # raises errors.Invalid for a payload it would refuse
    availability: Callable[[str | None], Availability | None]  # a reported status in the domain's words


@dataclass(frozen=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    raw: dict  # what the charger sent, kept as it came


@dataclass(slots=True)
class StatusReport:
    connector_id: int
    status: str  # as the charger reported it (shown as is)
    availability: Availability | None
    error_code: str | None
    info: str | None = None
    vendor_error_code: str | None = None
    timestamp: str | None = None


@dataclass
class ConnectorState:
    connector_id: int
    status: str | None = None
    availability: Availability | None = None
    error_code: str | None = None
    info: str | None = None
    vendor_error_code: str | None = None
    status_at: str | None = None
    energy_wh: float | None = None
    power_w: float | None = None
    meter_at: str | None = None
    current_a: tuple[float | None, ...] | None = None  # per phase as the charger reports it (L1, L2, L3)
    current_at: float | None = None  # trio.current_time() when it was reported

    @property
    def ready_to_start(self) -> bool:
        """A cable is plugged in and no charge runs: a start begins at once."""
        return self.availability is Availability.PLUGGED

    @property
    def can_start(self) -> bool:
        """Free or plugged in: a start is accepted (the charger waits for the cable if need be)."""
        return self.availability in (Availability.FREE, Availability.PLUGGED)


@dataclass
class ChargerState:
    id: str
    registration: str  # accepted | pending | rejected
    configured: bool
    connector_count: int | None = None
    protocol: str = DEFAULT_PROTOCOL
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    last_boot: str | None = None
    last_heartbeat: str | None = None
    connected_at: str | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    log_status: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # what the charger reported of its configuration
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    link: ChargerLink | None = None

    @property
    def online(self) -> bool:
        return self.link is not None

    def connector_ids(self, charging: bool = False) -> range:
        """The connector ids this charger has: 1 up to its count, and 0 (the charger as a whole)
        for statuses and meter values but never for a charge. An unconfigured charger's count is
        unknown, so up to MAX_CONNECTORS: a charger cannot grow its own entry without bound."""
        return range(1 if charging else 0, (self.connector_count or MAX_CONNECTORS) + 1)

    def accepts_connector(self, connector_id: int, charging: bool = False) -> bool:
        """Whether the charger may name `connector_id` (`charging`: for a charge)."""
        return connector_id in self.connector_ids(charging)

    def connector(self, connector_id: int) -> ConnectorState:
        if connector_id not in self.connectors:
            self.connectors[connector_id] = ConnectorState(connector_id)
        return self.connectors[connector_id]


class ChargerRegistry:
    def __init__(self, config: LiveConfig, store: Store, events: Events,
                 protocols: dict[str, Protocol]) -> None:
        self.config = config
        self.store = store
        self.events = events
        self.protocols = protocols
        self.chargers: dict[str, ChargerState] = {}
        # Unknown chargers connected but not yet booted: not listed, nothing stored. A handshake
        # alone costs no row, so thousands of connections that never speak leave nothing behind.
        self.visitors: dict[str, ChargerState] = {}

    async def load(self) -> None:
        """Configured chargers first, then what the books remember (approved, pending, statuses)."""
        for cfg in self.config.current.chargers:
            state = ChargerState(cfg.id, "accepted", configured=True, connector_count=cfg.connectors)
            for n in range(0, cfg.connectors + 1):
                state.connector(n)
            self.chargers[cfg.id] = state
        for row in await self.store.read(q.all_chargers):
            state = self.chargers.get(row["id"]) or ChargerState(row["id"], row["registration"], configured=False)
            if not state.configured:
                state.registration = row["registration"]
            state.protocol = row["protocol"] or DEFAULT_PROTOCOL
            state.vendor, state.model = row["vendor"], row["model"]
            state.serial_number, state.firmware_version = row["serial_number"], row["firmware_version"]
            state.last_boot, state.last_heartbeat = row["last_boot"], row["last_heartbeat"]
            self.chargers[row["id"]] = state
        for row in await self.store.read(q.all_connectors):
            state = self.chargers.get(row["charger_id"])
            if state is None:
                continue
            c = state.connector(row["connector_id"])
            c.status, c.error_code, c.info = row["status"], row["error_code"], row["info"]
            c.availability = self.protocol(state).availability(row["status"])
            c.vendor_error_code, c.status_at = row["vendor_error_code"], row["status_at"]
            c.energy_wh, c.power_w, c.meter_at = row["energy_wh"], row["power_w"], row["meter_at"]

    def get(self, charger_id: str) -> ChargerState | None:
        return self.chargers.get(charger_id)

    def require(self, charger_id: str) -> ChargerState:
        state = self.chargers.get(charger_id)
        if state is None:
            raise NotFound("Charger", charger_id)
        return state

    def all(self) -> list[ChargerState]:
        return [s for _, s in sorted(self.chargers.items())]

    def protocol(self, state: ChargerState) -> Protocol:
        return self.protocols.get(state.protocol) or self.protocols[DEFAULT_PROTOCOL]

    def online_count(self) -> int:
        return sum(1 for s in self.chargers.values() if s.online)

    # -- registration ----------------------------------------------------------------------

    def admission(self, charger_id: str) -> str | None:
        """The registration a connecting charger gets, or None to refuse the handshake."""
        state = self.chargers.get(charger_id)
        if state is not None and state.registration in ("accepted", "pending"):
            return state.registration
        policy = self.config.current.ocpp.unknown_chargers
        if policy == "reject" or (state is not None and state.registration == "rejected"):
            return None
        return "accepted" if policy == "accept" else "pending"

    def arriving(self, charger_id: str, registration: str) -> ChargerState:
        """The state of a charger whose handshake was admitted with `registration`: its listed one,
        or, for a charger we do not know yet, one that is listed once it boots (`enlist`)."""
        state = self.chargers.get(charger_id)
        if state is not None:
            return state
        state = self.visitors.setdefault(charger_id, ChargerState(charger_id, registration, configured=False))
        state.registration = registration  # the policy in force now (a reload may have changed it)
        return state

    def listed(self, state: ChargerState) -> bool:
        return self.chargers.get(state.id) is state

    async def enlist(self, state: ChargerState) -> None:
        """A connected visitor that speaks (boots, or an accepted one that skips its boot) is listed
        and stored from now on, its connection announced as for any charger; no-op if listed."""
        if self.visitors.get(state.id) is not state:
            return
        del self.visitors[state.id]
        self.chargers[state.id] = state
        await self.store.write(q.record_protocol, state.id, state.registration, state.protocol,
                               events=self.events.connection(state.id, True) if state.link is not None else [])

    async def set_registration(self, charger_id: str, registration: str) -> ChargerState:
        await self.store.write(q.upsert_charger, charger_id, registration)
        state = self.chargers.get(charger_id)
        if state is None:
            state = self.chargers[charger_id] = ChargerState(charger_id, registration, configured=False)
        state.registration = registration
        return state

    async def approve(self, charger_id: str) -> ChargerState:
        """Accept a charger from now on. One that is connected was told it is pending, and would
        only ask again after the interval it was given (up to `heartbeat_interval_s`): it is
        asked to boot again at once, so it is in service as soon as the operator approves it."""
        before = self.require(charger_id).registration
        state = await self.set_registration(charger_id, "accepted")
        if state.link is not None and before != "accepted":
            try:
                if not await state.link.trigger_boot():
                    log.info("charger=%s approved; it declined to boot now and will at its next retry", charger_id)
            except DomainError as exc:
                log.warning("charger=%s approved; asking it to boot now failed (%s): it will at its next retry",
                            charger_id, exc.message)
        return state

    async def reject(self, charger_id: str) -> ChargerState:
        """Refuse a charger from now on, and close its connection if it has one."""
        if self.require(charger_id).configured:
            raise Conflict(f"charger {charger_id} is in the config file; remove it there", "ChargerConfigured")
        state = await self.set_registration(charger_id, "rejected")
        if state.link is not None:
            await state.link.close(1008, "rejected by the operator")
        return state

    # -- what chargers tell us (called by the protocol adapters) -----------------------------

    async def connected(self, state: ChargerState, link: ChargerLink) -> bool:
        """`link` is the charger's connection from now on; False when it replaced an open one."""
        replaced = state.link is not None
        if state.link is not None:
            log.info("charger=%s reconnected; closing its previous connection", state.id)
            await state.link.close(1000, "replaced by a new connection")
        state.link, state.connected_at = link, now_iso()
        changed, state.protocol = state.protocol != link.protocol, link.protocol
        if not self.listed(state):
            return not replaced  # stored and announced once it speaks (enlist)
        if changed:
            await self.store.write(q.record_protocol, state.id, state.registration, link.protocol)
        if not replaced:
            await record_events(self.store, self.events.connection(state.id, True))
        return not replaced

    async def disconnected(self, state: ChargerState, link: ChargerLink) -> None:
        """The connection `link` closed (a newer one may have replaced it already)."""
        if state.link is not link:
            return
        state.link = None
        log.info("charger=%s disconnected", state.id)
        if not self.listed(state):
            self.visitors.pop(state.id, None)  # it never spoke: nothing of it to keep
            return
        if state.last_heartbeat:
            await self.store.write(q.record_heartbeat, state.id, state.last_heartbeat)
        await record_events(self.store, self.events.connection(state.id, False))

    async def booted(self, state: ChargerState, boot: BootInfo) -> str:
        """Records a boot (listing a charger we did not know); returns the registration to answer with."""
        await self.enlist(state)
        now = now_iso()
        await self.store.write(q.record_boot, state.id, state.registration, boot.vendor, boot.model,
                               boot.serial_number, boot.firmware_version, orjson.dumps(boot.raw).decode(), now)
        state.vendor, state.model = boot.vendor, boot.model
        state.serial_number, state.firmware_version, state.last_boot = boot.serial_number, boot.firmware_version, now
        log.info("charger=%s boot vendor=%s model=%s registration=%s", state.id, boot.vendor, boot.model,
                 state.registration)
        return state.registration

    def heartbeat(self, state: ChargerState) -> str:
        state.last_heartbeat = now = now_iso()
        return now

    async def status_changed(self, state: ChargerState, report: StatusReport) -> None:
        at = now_iso()
        known = state.connectors.get(report.connector_id)
        previous = (known.status, known.error_code) if known is not None else None
        await self.store.write(
            q.record_status, state.id, report.connector_id, report.status, report.error_code,
            report.info, report.vendor_error_code, at,
            events=self.events.status(state.id, report.connector_id, report.status, report.error_code,
                                      report.info, report.vendor_error_code, report.timestamp, previous),
        )
        c = state.connector(report.connector_id)
        c.status, c.availability, c.error_code, c.info = report.status, report.availability, report.error_code, report.info
        c.vendor_error_code, c.status_at = report.vendor_error_code, at

    @staticmethod
    def book_reading(conn: sqlite3.Connection, charger_id: str, connector_id: int, energy_wh: float | None,
                     power_w: float | None, at: str) -> None:
        """Store a connector's latest reading; runs in the store's writer thread, inside the write
        that stores the meter values it comes from (then `reading` updates the live picture)."""
        q.record_meter(conn, charger_id, connector_id, energy_wh, power_w, at)

    @staticmethod
    def reading(state: ChargerState, connector_id: int, energy_wh: float | None, power_w: float | None,
                at: str) -> None:
        c = state.connector(connector_id)
        c.energy_wh = energy_wh if energy_wh is not None else c.energy_wh
        c.power_w = power_w if power_w is not None else c.power_w
        c.meter_at = at

    def set_availability(self, state: ChargerState, connector_id: int, availability: Availability) -> None:
        """What a charge's start or end tells of a connector, for protocols whose status does
        not (OCPP 2.0.1's Occupied is a plugged car with or without a charge)."""
        state.connector(connector_id).availability = availability
    def currents_drawn(self, state: ChargerState, connector_id: int, amps: tuple[float | None, ...], at: str) -> None:
        """What a connector draws per phase, as its charger reported it at `at` (a live reading:
        a backlog replayed from before a reconnection is history, not the present)."""
        if at < iso(utcnow() - timedelta(seconds=LIVE_CURRENT_S)):
            return
        c = state.connector(connector_id)
        c.current_a, c.current_at = amps, trio.current_time()

    # -- operator commands -----------------------------------------------------------------

    def online_link(self, charger_id: str) -> ChargerLink:
        """The link of a connected charger: NotFound or ChargerOffline otherwise."""
        link = self.require(charger_id).link
        if link is None:
            raise ChargerOffline(charger_id)
        return link

    async def operation(self, charger_id: str, action: str, payload: dict) -> Any:
        """Send an operator's raw operation (`action` with its payload) and return the answer."""
        state = self.require(charger_id)
        protocol = self.protocol(state)
        if action not in protocol.operations:
            raise NotFound("Operation", action,
                           f"{action!r} is not an {protocol.name} operation a central system can send")
        protocol.check_operation(action, payload)
        return await self.online_link(charger_id).call(action, payload)

    async def unlocked(self, charger_id: str, connector_id: int) -> None:
        """A connector was unlocked by our command: the upstream hears of it."""
        await record_events(self.store, self.events.unlocked(charger_id, connector_id))

    async def close_all(self, code: int, reason: str) -> None:
        """Close every charger's connection (a goodbye before the controller exits)."""
        async with trio.open_nursery() as nursery:
            for state in [*self.chargers.values(), *self.visitors.values()]:
                if state.link is not None:
                    nursery.start_soon(state.link.close, code, reason)
