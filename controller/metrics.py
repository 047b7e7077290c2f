"""Every metric the controller exposes at GET /metrics, defined in one place.

Counters and histograms are updated where things happen (rpc.py on every OCPP frame), so the
hot-path helpers below cache their labelled children: an increment is a dict lookup plus a locked
add (well under a microsecond). Values that are state, not events (connected chargers, active
transactions, outbox depth), are read when scraped; so are the drivers' counters (Modbus requests
and errors, card taps), which drivers/ keeps as plain ints on its own objects because it is a leaf
that imports nothing from controller/.

Names follow Prometheus conventions: `evedge_` prefix, `_total` counters, base units (seconds).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest


if TYPE_CHECKING:
    from controller.chargers import ChargerRegistry
    from controller.store import Store
    from drivers import Hardware

# The classic text format every Prometheus (and the Pi's Debian one) reads; our names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # RSS, CPU seconds, open fds: cheap, read at scrape time

# -- OCPP ------------------------------------------------------------------------------------

CHARGERS_CONNECTED = Gauge("evedge_chargers_connected", "Chargers with an open OCPP connection.",
                           registry=REGISTRY)
CHARGERS_KNOWN = Gauge("evedge_chargers_known", "Chargers the site knows, by registration.",
                       ["registration"], registry=REGISTRY)
OCPP_MESSAGES = Counter(
    "evedge_ocpp_messages_total",
    "OCPP-J frames by direction (in: from chargers, out: to chargers), action and message type.",
    ["direction", "action", "type"], registry=REGISTRY)
OCPP_CALL_DURATION = Histogram(
    "evedge_ocpp_call_duration_seconds",
    "OCPP call latency. direction=out: our CALL until the charger's answer; "
    "direction=in: a charger's CALL until we answered it.",
    ["direction", "action"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
OCPP_CALL_ERRORS = Counter(
    "evedge_ocpp_callerrors_total",
    "CALLERROR frames by direction (in: sent by a charger, out: sent by us) and error code.",
    ["direction", "code"], registry=REGISTRY)
OCPP_CALL_TIMEOUTS = Counter("evedge_ocpp_call_timeouts_total",
                             "Our calls a charger did not answer in time.", ["action"], registry=REGISTRY)

# -- books -----------------------------------------------------------------------------------

TRANSACTIONS_ACTIVE = Gauge("evedge_transactions_active",
                            "Transactions pending, active or stopping.", registry=REGISTRY)
OUTBOX_PENDING = Gauge("evedge_outbox_pending", "Upstream notifications waiting for delivery.",
                       registry=REGISTRY)
OUTBOX_OLDEST_AGE = Gauge("evedge_outbox_oldest_pending_age_seconds",
                          "Age of the oldest undelivered upstream notification (0 when none).",
                          registry=REGISTRY)

DATABASE_BYTES = Gauge("evedge_database_size_bytes",
                       "The SQLite books on disk: the database file and its write-ahead log.", registry=REGISTRY)

# -- each charger, connector and meter (state read at scrape time) ---------------------------

CHARGER_ONLINE = Gauge("evedge_charger_online", "1 while a known charger has an open OCPP connection, else 0.",
                       ["charger"], registry=REGISTRY)
CONNECTOR_STATUS = Gauge(
    "evedge_connector_status",
    "1 for a connector's latest status as its charger reported it (1.6 ChargePointStatus, 2.0.1 "
    "ConnectorStatus); connector 0 is the charger as a whole. One series per connector.",
    ["charger", "connector", "status"], registry=REGISTRY)
CONNECTOR_POWER = Gauge("evedge_connector_power_watts", "A connector's latest active power as its charger reported it.",
                        ["charger", "connector"], registry=REGISTRY)
CONNECTOR_ENERGY = Gauge("evedge_connector_energy_watthours",
                         "A connector's latest energy register reading as its charger reported it.",
                         ["charger", "connector"], registry=REGISTRY)
METER_ONLINE = Gauge("evedge_meter_online", "1 while an energy meter answers its polls, else 0.",
                     ["meter", "charger", "connector"], registry=REGISTRY)
METER_POWER = Gauge("evedge_meter_power_watts", "An energy meter's latest active power (negative: export).",
                    ["meter", "charger", "connector"], registry=REGISTRY)
METER_ENERGY_IMPORT = Gauge("evedge_meter_energy_import_watthours", "An energy meter's import register.",
                            ["meter", "charger", "connector"], registry=REGISTRY)
METER_ENERGY_EXPORT = Gauge("evedge_meter_energy_export_watthours", "An energy meter's export register.",
                            ["meter", "charger", "connector"], registry=REGISTRY)
_PER_DEVICE = (CHARGER_ONLINE, CONNECTOR_STATUS, CONNECTOR_POWER, CONNECTOR_ENERGY, METER_ONLINE, METER_POWER,
               METER_ENERGY_IMPORT, METER_ENERGY_EXPORT)

# -- field buses (drivers/' counters, read at scrape time) -------------------------------------

UPSTREAM_CONNECTED = Gauge("evedge_upstream_connected",
                           "Local-controller mode: 1 while the charger's link to the central system is up.",
                           ["charger"], registry=REGISTRY)
UPSTREAM_QUEUED = Gauge("evedge_upstream_queued_messages",
                        "Local-controller mode: the charger's messages waiting for the central system.",
                        ["charger"], registry=REGISTRY)
UPSTREAM_FORWARDED = Counter("evedge_upstream_forwarded_total",
                             "Local-controller mode: the charger's messages the central system answered.",
                             ["charger"], registry=REGISTRY)
MODBUS_REQUESTS = Counter("evedge_modbus_requests_total", "Modbus requests by bus.", ["bus"],
                          registry=REGISTRY)
MODBUS_ERRORS = Counter(
    "evedge_modbus_errors_total",
    "Failed Modbus requests by bus and kind (timeout: no answer, exception: a Modbus exception "
    "response, io: a transport error).", ["bus", "kind"], registry=REGISTRY)
CARD_TAPS = Counter("evedge_card_taps_total", "Card taps by reader.", ["reader"], registry=REGISTRY)

# -- the process -----------------------------------------------------------------------------

LOOP_LAG = Histogram(
    "evedge_event_loop_lag_seconds",
    "How late the Trio loop woke a task that asked to sleep (sampled once a second).",
    registry=REGISTRY, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
LOOP_LAG_LAST = Gauge("evedge_event_loop_lag_last_seconds", "The latest event-loop lag sample.",
                      registry=REGISTRY)
STARTED = Gauge("evedge_start_time_seconds", "When this controller process started (Unix time).",
                registry=REGISTRY)
STARTED.set(time.time())

# -- hot-path helpers ------------------------------------------------------------------------

_children: dict[tuple, object] = {}


def ocpp_message(direction: str, action: str, kind: str) -> None:
    """Count one frame. `kind` is call | result | error. `action` is a known action or "other"
    (the RPC session's `_label`: a charger may send any string, label values stay bounded)."""
    key = ("m", direction, action, kind)
    child = _children.get(key)
    if child is None:
        child = _children[key] = OCPP_MESSAGES.labels(*key[1:])
    child.inc()


def ocpp_call_duration(direction: str, action: str, seconds: float) -> None:
    key = ("d", direction, action)
    child = _children.get(key)
    if child is None:
        child = _children[key] = OCPP_CALL_DURATION.labels(*key[1:])
    child.observe(seconds)


_ERROR_CODES = frozenset({
    "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
    "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
    "OccurrenceConstraintViolation", "TypeConstraintViolation", "GenericError", "FormatViolation",
    "MessageTypeNotSupported", "RpcFrameworkError",
})


def ocpp_call_error(direction: str, code: str) -> None:
    # A charger may send any code: unknown ones share one label value.
    OCPP_CALL_ERRORS.labels(direction, code if code in _ERROR_CODES else "other").inc()


def ocpp_call_timeout(action: str) -> None:
    OCPP_CALL_TIMEOUTS.labels(action).inc()


# -- load management (set by controller/load_management/manager.py after every allocation) ----

CIRCUIT_MEASURED = Gauge("evedge_circuit_measured_current_amperes",
                         "Current a circuit's meter measures, per phase (negative: export; absent when stale).",
                         ["circuit", "phase"], registry=REGISTRY)
CIRCUIT_ALLOCATED = Gauge("evedge_circuit_allocated_current_amperes",
                          "Sum of the shares of the connectors below a circuit, per phase.",
                          ["circuit", "phase"], registry=REGISTRY)
CIRCUIT_LIMIT = Gauge("evedge_circuit_limit_amperes", "A circuit's limit in force (an override applied).",
                      ["circuit"], registry=REGISTRY)
CIRCUIT_OVER_LIMIT = Counter("evedge_circuit_over_limit_seconds_total",
                             "Time a circuit's meter measured more than its limit on some phase.",
                             ["circuit"], registry=REGISTRY)
CIRCUIT_FAILSAFE = Gauge("evedge_circuit_failsafe",
                         "1 while a circuit runs on fail-safe currents (its meter, or one above, is stale).",
                         ["circuit"], registry=REGISTRY)
CONNECTOR_ALLOCATED = Gauge("evedge_connector_allocated_current_amperes",
                            "A connector's share (per phase) while a charge runs on it.",
                            ["charger", "connector"], registry=REGISTRY)
_PHASE_LABELS = ("L1", "L2", "L3")


def circuit_state(circuit: str, measured: tuple[float, ...] | None, allocated: tuple[float, ...], limit: float,
                  failsafe: bool, over_s: float) -> None:
    for phase, value in zip(_PHASE_LABELS, allocated):
        CIRCUIT_ALLOCATED.labels(circuit, phase).set(value)
    for index, phase in enumerate(_PHASE_LABELS):
        key = (circuit, phase)
        if measured is not None:
            CIRCUIT_MEASURED.labels(*key).set(measured[index])
            _measured_children.add(key)
        elif key in _measured_children:  # stale: no figure rather than an old one
            CIRCUIT_MEASURED.remove(*key)
            _measured_children.discard(key)
    CIRCUIT_LIMIT.labels(circuit).set(limit)
    CIRCUIT_FAILSAFE.labels(circuit).set(1 if failsafe else 0)
    CIRCUIT_OVER_LIMIT.labels(circuit).inc(over_s)


def connector_allocated(charger: str, connector: int, amps: float | None) -> None:
    """A connector's share; None once its charge ended (the series goes away)."""
    key = (charger, str(connector))
    if amps is None:
        if key in _connector_children:
            CONNECTOR_ALLOCATED.remove(*key)
            _connector_children.discard(key)
        return
    CONNECTOR_ALLOCATED.labels(*key).set(amps)
    _connector_children.add(key)


_measured_children: set[tuple[str, str]] = set()
_connector_children: set[tuple[str, str]] = set()


# -- scraping --------------------------------------------------------------------------------


async def watch_loop_lag(interval: float = 1.0) -> None:
    """Sample how late the loop wakes us; a blocked loop shows as lag once it runs again."""
    _last_lag[0] = 0.0  # a fresh loop: nothing seen yet (the figure is per process, the loop per site)
    while True:
        start = trio.current_time()
        await trio.sleep(interval)
        lag = max(0.0, trio.current_time() - start - interval)
        LOOP_LAG.observe(lag)
        LOOP_LAG_LAST.set(lag)
        _last_lag[0] = lag


_last_lag = [0.0]


def last_loop_lag() -> float:
    return _last_lag[0]


#: What each driver object's counters stood at when last scraped. A scrape adds only what happened
#: since, so the Prometheus counters stay cumulative for the process (and keep their `_created`
#: time) however many sites and drivers come and go in it; the drivers' own ints start at 0 each.
_scraped: weakref.WeakKeyDictionary[object, dict[tuple[object, ...], int]] = weakref.WeakKeyDictionary()


def _count(counter: Counter, labels: tuple[str, ...], source: object, total: int) -> None:
    """Bring `counter{labels}` up to date with `total`, a count kept by the driver object `source`."""
    seen = _scraped.setdefault(source, {})
    key = (counter, *labels)
    if total > seen.get(key, 0):
        # labels() only now: like an increment where it happened, a series appears with its first event
        counter.labels(*labels).inc(total - seen.get(key, 0))
    seen[key] = total


def collect_drivers(hardware: Hardware) -> None:
    """Add what the buses and card readers counted since the last scrape to the counters above."""
    for bus in hardware.buses.values():
        counts = bus.stats
        _count(MODBUS_REQUESTS, (bus.id,), bus, counts.requests)
        _count(MODBUS_ERRORS, (bus.id, "timeout"), bus, counts.timeouts)
        _count(MODBUS_ERRORS, (bus.id, "exception"), bus, counts.device_errors)
        _count(MODBUS_ERRORS, (bus.id, "io"), bus, counts.io_errors)
    for reader_id, reader in hardware.readers.items():
        _count(CARD_TAPS, (reader_id,), reader, reader.state.taps)


async def render(chargers: ChargerRegistry, store: Store, hardware: Hardware,
                 upstream_links: Callable[[], Awaitable[list[dict]]] | None = None) -> bytes:
    """Refresh the state gauges (the chargers' connections and registrations, the books in
    `store`, the links to a central system above the site) and the drivers' counters; return the
    text exposition."""
    from controller.store import stats

    collect_drivers(hardware)
    for link in await upstream_links() if upstream_links is not None else []:
        charger = link["chargeBoxId"]
        UPSTREAM_CONNECTED.labels(charger).set(int(link["connected"]))
        UPSTREAM_QUEUED.labels(charger).set(link["queued"])
        _count(UPSTREAM_FORWARDED, (charger,), upstream_links, link["forwarded"])
    CHARGERS_CONNECTED.set(chargers.online_count())
    registrations = {"accepted": 0, "pending": 0, "rejected": 0}
    for state in chargers.chargers.values():
        registrations[state.registration] = registrations.get(state.registration, 0) + 1
    for registration, count in registrations.items():
        CHARGERS_KNOWN.labels(registration).set(count)
    snapshot = await store.read(stats.snapshot, store.outbox_queued)
    TRANSACTIONS_ACTIVE.set(snapshot.transactions_open)
    OUTBOX_PENDING.set(snapshot.outbox_pending)
    OUTBOX_OLDEST_AGE.set(snapshot.outbox_oldest_age_s)
    DATABASE_BYTES.set(stats.database_bytes(store.path))
    # No await from here to the text: a concurrent scrape never sees the per-device series half set.
    collect_devices(chargers, hardware)
    return generate_latest(REGISTRY)


def collect_devices(chargers: ChargerRegistry, hardware: Hardware) -> None:
    """The per-device series as they are now: cleared and set again, so a connector has only its
    current status, and a charger or meter gone from the config leaves no series behind."""
    for gauge in _PER_DEVICE:
        gauge.clear()
    for state in chargers.chargers.values():
        CHARGER_ONLINE.labels(state.id).set(1 if state.online else 0)
        for connector_id, connector in state.connectors.items():
            labels = (state.id, str(connector_id))
            if connector.status is not None:
                CONNECTOR_STATUS.labels(*labels, connector.status).set(1)
            if connector.power_w is not None:
                CONNECTOR_POWER.labels(*labels).set(connector.power_w)
            if connector.energy_wh is not None:
                CONNECTOR_ENERGY.labels(*labels).set(connector.energy_wh)
    for meter in hardware.meters.values():
        reading = meter.state
        labels = (reading.id, reading.charger or "", "" if reading.connector is None else str(reading.connector))
        METER_ONLINE.labels(*labels).set(1 if reading.online else 0)
        for gauge, value in ((METER_POWER, reading.power_w), (METER_ENERGY_IMPORT, reading.energy_import_wh),
                             (METER_ENERGY_EXPORT, reading.energy_export_wh)):
            if value is not None:
                gauge.labels(*labels).set(value)
