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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol as Interface

import orjson
import trio

from controller.changes import Changes
from controller.clock import SiteClock
from controller.config import MAX_CONNECTORS
from controller.errors import ChargerOffline, Conflict, DomainError, NotFound, UnsupportedOperation
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import charger_reports as reports
from controller.store import chargers as q
from controller.timefmt import iso_from_now, now_iso
from controller.upstream.events import Events
from controller.upstream.events import record as record_events

if TYPE_CHECKING:
    from controller.charger_passwords import ChargerPasswords
    from controller.local_list import LocalListEntry, LocalListSync

log = logging.getLogger("evedge.chargers")
DEFAULT_PROTOCOL = "ocpp1.6"
_UNUSABLE_IN_IDS = ("/", "\\", "..")


def usable_charger_id(charger_id: str) -> bool:
    """Whether an id can name a charger everywhere: a charger listed under an id holding `/`, `\\`
    or `..` (or a control character) could never be named in `/api/v1/chargers/{id}`, so no
    operator could approve, reject or command it; nor could "." (clients resolve it away)."""
    return (bool(charger_id) and charger_id != "." and not any(part in charger_id for part in _UNUSABLE_IN_IDS)
            and all(c >= " " and c != "\x7f" for c in charger_id))
REPORTED = {"firmware": "firmware_status", "diagnostics": "diagnostics_status", "log": "log_status"}
"""A reported status's kind -> the ChargerState field showing the latest."""
LIVE_CURRENT_S = 120  # a current reading older than this when it arrives is a replayed backlog
READING_BOOK_S = 300.0
"""How often a connector's live reading (energy, power, time) is written to its row: it is for the
picture after a restart (until the next reading), so rewriting the row with every MeterValues, one
more page on the card each time, buys nothing. Billing never reads it (see Transactions)."""
LOOP_REPLACEMENTS = 3  # this many replacements of a live connection ...
LOOP_WINDOW_S = 10.0  # ... within this many seconds (Trio's clock) is a reconnect loop: a charger fault


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

    async def remote_start(self, connector_id: int, id_tag: str, remote_start_id: int,
                           token_type: str = "ISO14443") -> bool:
        """Ask for a charge; `remote_start_id` is our pending transaction's id (chargers that name
        their own transactions echo it in their start); `token_type` how the tag is read, for
        protocols that name it."""

    async def remote_stop(self, transaction_id: int, charger_transaction_id: str | None) -> bool:
        """Ask to end a charge: our id, and the charger's own id when it assigned one."""

    async def unlock(self, connector_id: int) -> bool: ...

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        """The limit (per phase, amps) every charge starts with and falls back to when no other
        limit is in force: kept by the charger, also when the controller is gone."""

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int, charger_transaction_id: str | None = None) -> bool:
        """A limit (per phase, amps) on one running charge for `duration_s` from now; after that
        the default limit applies again unless it is renewed. Chargers that name their own
        transactions get theirs (`charger_transaction_id`)."""

    async def charge_status(self, charger_transaction_id: str) -> ChargeStatus | None:
        """Ask about a charge the charger named; None where the protocol has no such question."""

    async def trigger_boot(self) -> bool:
        """Ask the charger to announce itself (boot) now, rather than at its next retry."""

    async def reserve(self, reservation_id: int, connector_id: int, id_tag: str, expires_at: str,
                      parent_id_tag: str | None, token_type: str = "ISO14443") -> str | None:
        """Hold a connector for an id tag until `expires_at`; the charger's answer in 1.6's words
        (Accepted, Faulted, Occupied, Rejected, Unavailable; None for an answer without one).
        Raises Invalid for a protocol that cannot reserve."""

    async def cancel_reservation(self, reservation_id: int) -> bool:
        """Cancel a reservation; False: the charger holds no reservation of that id."""

    async def call(self, action: str, payload: dict) -> Any:
        """A raw operation for the operator's endpoint, checked by `Protocol.check_operation` first."""

    async def trigger(self, message: str, connector_id: int | None = None) -> str:
        """Ask the charger to send `message` (BootNotification, StatusNotification, ...) now;
        its answer's status (Accepted, Rejected, NotImplemented)."""

    async def send_local_list(self, version: int, full: bool, entries: list[LocalListEntry]) -> str:
        """Install (`full`) or update the charger's local authorization list at `version`; the
        answer's status (Accepted, Failed, NotSupported, VersionMismatch)."""

    async def local_list_version(self) -> int:
        """The version of the list the charger holds (0: none; -1: it keeps no local list)."""

    async def local_list_max_length(self) -> int | None:
        """How many entries one update may carry, as the charger reports it (None: not said)."""

    async def change_password(self, password: str) -> Any:
        """Set the key the charger sends in its handshake (security profile 1); its answer."""

    def password_status(self, answer: Any) -> str | None:
        """The status in the charger's answer to a password change (its own or an operator's raw
        operation): Accepted, RebootRequired, Rejected, ..."""

    async def set_charging_profile(self, connector_id: int, profile: dict) -> str:
        """An operator's OCPP 1.6 charging profile (checked already); the answer's status."""

    async def clear_charging_profile(self, profile_id: int) -> str:
        """ClearChargingProfile by id; the answer's status (Accepted, Unknown)."""

    async def update_firmware(self, request_id: int, location: str, retrieve_date: str, retries: int | None,
                              retry_interval_s: int | None) -> dict:
        """Ask the charger to fetch and install firmware; its answer (2.0.1: a status)."""

    async def get_diagnostics(self, request_id: int, location: str, start: str | None, stop: str | None,
                              retries: int | None, retry_interval_s: int | None) -> dict:
        """Ask the charger to upload its diagnostics (2.0.1: its diagnostics log); its answer."""

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class ChargeStatus:
    """What a charger says of one of its charges: whether it still runs (None: it cannot tell) and
    whether messages about it wait in its queue."""

    ongoing: bool | None
    queued: bool


@dataclass(frozen=True)
class ChargeOperation:
    """An operator's raw operation that starts or stops a charge, read by its protocol, so the
    books keep it like the controller's own remote start or stop."""

    kind: str  # "start" | "stop"
    connector_id: int = 0  # start: 0 when the charger picks the connector
    id_tag: str = ""
    transaction_id: int | None = None  # stop: our id
    charger_transaction_id: str | None = None  # stop: the charger's id (chargers that name their own)


def no_charge_operations(action: str, payload: dict) -> ChargeOperation | None:
    return None


@dataclass(frozen=True)
class Protocol:
    """What one protocol version offers above its adapter."""

    name: str  # the WebSocket subprotocol: "ocpp1.6"
    operations: frozenset[str]  # what an operator may send raw through the operations endpoint
    check_operation: Callable[[str, dict], None]  # raises errors.Invalid for a payload it would refuse
    availability: Callable[[str | None], Availability | None]  # a reported status in the domain's words
    # which raw operations (checked already) start or stop a charge
    charge_operation: Callable[[str, dict], ChargeOperation | None] = no_charge_operations
    new_password: Callable[[str, dict], str | None] = lambda action, payload: None
    """The charger password an operator's raw operation sets (1.6 ChangeConfiguration of
    AuthorizationKey), or None: stored first, so the charger's reconnect with it is accepted."""
    check_charging_profile: Callable[[int, dict], None] | None = None
    """Raises errors.Invalid for a charging profile record (connector id, profile) the version
    would refuse; None: the version takes no charging profile records."""


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
    reading_booked_at: float | None = None  # trio.current_time() when the live reading was last written
    reading_unbooked: bool = False  # the live reading is newer than its row (READING_BOOK_S)
    current_a: tuple[float | None, ...] | None = None  # per phase as the charger reports it (L1, L2, L3)
    current_at: float | None = None  # trio.current_time() when it was reported
    reservation_id: int | None = None  # the reservation in force on it (kept by controller/reservations.py)

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
    local_list: LocalListSync | None = None  # its local authorization list, as controller/local_list.py keeps it
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    link: ChargerLink | None = None
    connection_loops: int = 0  # reconnect loops seen: a new connection kept replacing a live one
    replaced_at: deque[float] = field(default_factory=deque)  # Trio times of recent replacements

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
                 protocols: dict[str, Protocol], changes: Changes | None = None) -> None:
        self.config = config
        self.changes = changes or Changes()  # live watchers (the dashboard) hear of every change
        self.store = store
        self.events = events
        self.protocols = protocols
        self.chargers: dict[str, ChargerState] = {}
        self.clock: SiteClock | None = None
        """The site's judgement of its wall clock (set by the site)."""
        # Unknown chargers connected but not yet booted: not listed, nothing stored. A handshake
        # alone costs no row, so thousands of connections that never speak leave nothing behind.
        self.visitors: dict[str, ChargerState] = {}
        # Called (never awaited: they start background work) once a charger booted, and once an
        # accepted charger that booted before connected again.
        self.boot_listeners: list[Callable[[ChargerState], None]] = []
        self.reconnect_listeners: list[Callable[[ChargerState], None]] = []
        self.password_keeper: ChargerPasswords | None = None  # stores a new password before it is sent

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
        for row in await self.store.read(reports.latest_statuses, tuple(REPORTED)):
            if (state := self.chargers.get(row["charger_id"])) is not None:
                setattr(state, REPORTED[row["kind"]], row["status"])
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
        self.changes.publish("charger", charger=state.id)
        await self.store.write(q.record_protocol, state.id, state.registration, state.protocol,
                               events=self.events.connection(state.id, True) if state.link is not None else [])

    async def set_registration(self, charger_id: str, registration: str) -> ChargerState:
        await self.store.write(q.upsert_charger, charger_id, registration)
        state = self.chargers.get(charger_id)
        if state is None:
            state = self.chargers[charger_id] = ChargerState(charger_id, registration, configured=False)
        state.registration = registration
        self.changes.publish("charger", charger=charger_id)
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
            self._replaced(state)
            await state.link.close(1000, "replaced by a new connection")
        state.link, state.connected_at = link, now_iso()
        changed, state.protocol = state.protocol != link.protocol, link.protocol
        self.changes.publish("charger", charger=state.id)
        if not self.listed(state):
            return not replaced  # stored and announced once it speaks (enlist)
        if changed:
            await self.store.write(q.record_protocol, state.id, state.registration, link.protocol)
        if not replaced:
            await record_events(self.store, self.events.connection(state.id, True))
        if state.registration == "accepted" and state.last_boot is not None:
            for listener in self.reconnect_listeners:
                listener(state)
        return not replaced

    @staticmethod
    def _replaced(state: ChargerState) -> None:
        """A new connection replaced a live one: the newest wins, always (a charger that lost its
        old connection without noticing must get back in). Several within seconds are two
        connections taking turns (a charger opening a second one, or two chargers configured
        with one id): a fault the operator must see, counted and logged once per loop."""
        now = trio.current_time()
        state.replaced_at.append(now)
        while state.replaced_at[0] < now - LOOP_WINDOW_S:
            state.replaced_at.popleft()
        if len(state.replaced_at) >= LOOP_REPLACEMENTS:
            state.replaced_at.clear()
            state.connection_loops += 1
            log.warning("charger=%s fault: reconnect loop, a new connection replaced a live one %d times within"
                        " %g s (a second connection from the charger, or two chargers with this id)",
                        state.id, LOOP_REPLACEMENTS, LOOP_WINDOW_S)

    async def disconnected(self, state: ChargerState, link: ChargerLink) -> None:
        """The connection `link` closed (a newer one may have replaced it already)."""
        if state.link is not link:
            return
        state.link = None
        log.info("charger=%s disconnected", state.id)
        self.changes.publish("charger", charger=state.id)
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
        self.changes.publish("charger", charger=state.id)
        log.info("charger=%s boot vendor=%s model=%s registration=%s", state.id, boot.vendor, boot.model,
                 state.registration)
        if state.registration == "accepted":
            for listener in self.boot_listeners:
                listener(state)
        return state.registration

    async def reported(self, state: ChargerState, kind: str, status: str, detail: dict | None = None) -> None:
        """A firmware, diagnostics or log status the charger sent, kept with its time. The charger's
        latest status changes as the commit ends, so the API never shows the history ahead of it."""
        def write(conn: sqlite3.Connection) -> None:
            reports.add_report(conn, state.id, kind, status, orjson.dumps(detail).decode() if detail else None,
                               now_iso())
            self.store.after_commit(lambda: setattr(state, REPORTED[kind], status))

        await self.store.write(write)

    def heartbeat(self, state: ChargerState) -> str:
        state.last_heartbeat = now = now_iso()
        return now

    def current_time(self, stamped: str) -> str:
        """The time to tell a charger (`currentTime`) when our clock stamped `stamped`: that, unless
        the site's clock is known to be behind (controller/clock.py)."""
        return self.clock.for_chargers(stamped) if self.clock is not None else stamped

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
        self.changes.publish("connector", charger=state.id, connector=report.connector_id, status=report.status,
                             errorCode=report.error_code, errorChanged=(previous or (None, None))[1] != report.error_code)

    def reading_due(self, charger_id: str, connector_id: int) -> bool:
        """Whether a connector's live reading is to be written with this one (READING_BOOK_S)."""
        state = self.chargers.get(charger_id)
        booked = state.connector(connector_id).reading_booked_at if state is not None else None
        return booked is None or trio.current_time() - booked >= READING_BOOK_S

    @staticmethod
    def book_reading(conn: sqlite3.Connection, charger_id: str, connector_id: int, energy_wh: float | None,
                     power_w: float | None, at: str) -> None:
        """Store a connector's latest reading; runs in the store's writer thread, inside the write
        that stores the meter values it comes from (then `reading` updates the live picture)."""
        q.record_meter(conn, charger_id, connector_id, energy_wh, power_w, at)

    async def book_readings(self) -> None:
        """Write the live readings newer than their rows (at shutdown: the next start shows them)."""
        unbooked = [(state.id, n, c) for state in self.chargers.values() for n, c in state.connectors.items()
                    if c.reading_unbooked and c.meter_at is not None]

        def write(conn: sqlite3.Connection) -> None:
            for charger_id, n, c in unbooked:
                q.record_meter(conn, charger_id, n, c.energy_wh, c.power_w, c.meter_at)  # type: ignore[arg-type]

        if unbooked:
            await self.store.write(write)
            for _, _, c in unbooked:
                c.reading_unbooked = False

    def reading(self, state: ChargerState, connector_id: int, energy_wh: float | None, power_w: float | None,
                at: str, booked: bool = True) -> None:
        """The connector's live reading is this (`booked`: written to its row with it)."""
        c = state.connector(connector_id)
        c.energy_wh = energy_wh if energy_wh is not None else c.energy_wh
        c.power_w = power_w if power_w is not None else c.power_w
        c.meter_at = at
        c.reading_unbooked = not booked
        if booked:
            c.reading_booked_at = trio.current_time()
        self.changes.publish("reading", charger=state.id, connector=connector_id, energyWh=c.energy_wh,
                             powerW=c.power_w)

    def set_availability(self, state: ChargerState, connector_id: int, availability: Availability) -> None:
        """What a charge's start or end tells of a connector, for protocols whose status does
        not (OCPP 2.0.1's Occupied is a plugged car with or without a charge)."""
        state.connector(connector_id).availability = availability
    def currents_drawn(self, state: ChargerState, connector_id: int, amps: tuple[float | None, ...], at: str) -> None:
        """What a connector draws per phase, as its charger reported it at `at` (a live reading:
        a backlog replayed from before a reconnection is history, not the present)."""
        if at < iso_from_now(-LIVE_CURRENT_S):
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

    def check_operation(self, charger_id: str, action: str, payload: dict) -> Protocol:
        """The charger's protocol, once it offers `action` and would take `payload`."""
        protocol = self.protocol(self.require(charger_id))
        if action not in protocol.operations:
            raise UnsupportedOperation(f"{action!r} is not an {protocol.name} operation a central system can send")
        protocol.check_operation(action, payload)
        return protocol

    async def operation(self, charger_id: str, action: str, payload: dict) -> Any:
        """Send an operator's raw operation (`action` with its payload) and return the answer
        (one that starts or stops a charge goes through `Transactions.operation`; one that sets
        the charger's password stores it first)."""
        protocol = self.check_operation(charger_id, action, payload)
        link = self.online_link(charger_id)
        password = protocol.new_password(action, payload)
        if password is not None and self.password_keeper is not None:
            return await self.password_keeper.change(charger_id, password, lambda: link.call(action, payload),
                                                     link.password_status)
        return await link.call(action, payload)

    async def unlocked(self, charger_id: str, connector_id: int) -> None:
        """A connector was unlocked by our command: the upstream hears of it."""
        await record_events(self.store, self.events.unlocked(charger_id, connector_id))

    async def close_all(self, code: int, reason: str) -> None:
        """Close every charger's connection (a goodbye before the controller exits)."""
        async with trio.open_nursery() as nursery:
            for state in [*self.chargers.values(), *self.visitors.values()]:
                if state.link is not None:
                    nursery.start_soon(state.link.close, code, reason)
