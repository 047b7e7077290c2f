"""The site: builds every part from the config and runs them in one nursery."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

import trio

from controller import health, metrics, retention
from controller.api.app import serve_api
from controller.api.public_listener import serve_public
from controller.api.http_server import ConnectionGate
from controller.api.services import Services
from controller.authorization import Authorization
from controller.changes import Changes
from controller.charger_jobs import ChargerJobs
from controller.charger_passwords import ChargerPasswords
from controller.chargers import ChargerRegistry
from controller.charging_profiles import ChargingProfiles
from controller.clock import SiteClock
from controller.config import Config, ListenError, parse_listen
from controller.csms.server import PROTOCOLS, OcppServer
from controller.dashboard import Dashboard
from controller.dashboard.watch import watch as dashboard_watch
from controller.live_config import LiveConfig
from controller.local_controller.forwarder import Forwarder
from controller.load_management.manager import LoadManager
from controller.local_list import LocalLists
from controller.maintenance import Maintenance
from controller.public_charging.sessions import PublicCharging
from controller.reservations import Reservations
from controller.store import Store, integrity, stats
from controller.tap_to_charge import TapToCharge
from controller.transactions import Transactions
from controller.upstream.card_decisions import CardDecisions
from controller.upstream.delivery import Delivery
from controller.upstream.events import Events
from drivers import Hardware

log = logging.getLogger("evedge")
SHUTDOWN_GRACE_S = 3.0
E = TypeVar("E", bound=BaseException)


def first_error(exc: BaseException, kind: type[E] | tuple[type[E], ...]) -> E | None:
    """`exc` itself or the first of `kind` inside it: Trio's nurseries wrap a failure in
    exception groups, one per nursery it passed."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next((found for inner in exc.exceptions if (found := first_error(inner, kind)) is not None), None)
    return None


@contextmanager
def _binding(config: Config, key: str) -> Iterator[None]:
    """A listener that cannot bind raises ListenError naming its config key and address, not a
    bare "Address already in use" the installer has to trace back to the file."""
    try:
        yield
    except BaseException as exc:
        error = first_error(exc, OSError)
        if error is None:
            raise
        listen = config.listeners()[key]
        hint = ""
        if error.errno == errno.EACCES and 0 < parse_listen(listen)[1] < 1024:
            hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port from 1024 up)"
        raise ListenError(f"{config.source}: {key}: cannot listen on {listen}: {error.strerror or error}{hint}") from None


class Site:
    def __init__(self, config: Config, new_books: bool = False) -> None:
        """`new_books`: begin new books if the data directory had some and the database is gone
        (`evedge run --new-books`; otherwise that is refused: controller/store/data_dir.py)."""
        self.live = LiveConfig(config)
        self.store = Store(config.data_dir, after_write=lambda: self.upstream.after_write(), site=config.site.name,
                           new_books=new_books)
        self.events = Events(config.upstream.enabled)
        self.upstream = Delivery(config.upstream, self.store)
        self.changes = Changes()  # what the dashboard's open pages watch live
        self.chargers = ChargerRegistry(self.live, self.store, self.events, PROTOCOLS, self.changes)
        self.clock = self.chargers.clock = SiteClock(partial(self.store.read, stats.newest_stamp))
        self.card_decisions = CardDecisions(self.live)  # [upstream] authorize_url
        self.authorization = Authorization(self.store, self.live, ask=self.card_decisions.ask)
        self.reservations = Reservations(self.store, self.chargers, self.authorization)
        self.transactions = Transactions(
            self.live, self.store, self.chargers, self.authorization, self.events,
            on_booked=lambda conn, kind, row: self.public_charging.transaction_changed(conn, kind, row),
            energy_source=self.connector_energy if any(c.meter == "connector-meter" for c in config.chargers) else None,
            reservations=self.reservations,
        )
        self.public_charging = PublicCharging(config, self.store, self.chargers, self.transactions)
        # What the controller keeps of each charger for its operator, and the calls it makes on its own.
        self.jobs = ChargerJobs()
        self.local_lists = LocalLists(self.live, self.store, self.chargers, self.authorization, self.jobs)
        self.profiles = ChargingProfiles(self.live, self.store, self.chargers, self.jobs)
        self.maintenance = Maintenance(self.store, self.chargers, self.jobs)
        self.passwords = ChargerPasswords(self.store, self.chargers)
        self.ocpp = OcppServer(self.live, self.chargers, self.transactions, self.passwords)
        self.ocpp_port: int | None = None
        self.api_port: int | None = None
        self.public_port: int | None = None  # [public_charging] listen, when set
        self.http_gate = ConnectionGate(config.api.max_connections)  # API connections open, and the cap
        self.public_gate = ConnectionGate(config.api.max_connections)  # the same for [public_charging] listen
        self._stopping = trio.Event()
        self._cancel: trio.CancelScope | None = None
        # name -> fn() returning {"status": "ok"|"degraded"|"failing", ...}; drivers add their buses
        self.health_checks: dict[str, Callable[[], dict]] = {}
        # Meters and card readers (drivers/); taps start and stop charges (controller/tap_to_charge.py).
        self.hardware = Hardware(config.buses, config.meters, config.readers)
        self.health_checks.update(self.hardware.health_checks())
        self.tap_to_charge = TapToCharge(self.authorization, self.transactions)
        self.load = LoadManager(self.live, self.chargers, self.store, self.hardware)  # [[circuits]]
        self.health_checks.update(self.load.health_checks())
        self.health_checks["clock"] = self.clock.health
        # Local-controller mode ([upstream.ocpp]): the chargers' OCPP forwarded to a central system.
        self.forwarder = Forwarder(self.live, self.store, self.chargers, self.transactions, self.authorization,
                                   self.load) \
            if config.upstream.ocpp is not None else None
        if self.forwarder is not None:
            self.ocpp.forward = self.forwarder.forward
        # What the REST API may use, and nothing else of the site.
        self.api_services = Services(
            config=self.live, chargers=self.chargers, transactions=self.transactions,
            authorization=self.authorization, hardware=self.hardware, tap_results=self.tap_to_charge.results,
            delivery=self.upstream, public_charging=self.public_charging, load=self.load, health=self.health,
            metrics=partial(metrics.render, self.chargers, self.store, self.hardware,
                            self.forwarder.status if self.forwarder else None),
            reservations=self.reservations,
            profiles=self.profiles, maintenance=self.maintenance,
            passwords=self.passwords,
            upstream_links=self.forwarder.status if self.forwarder else None,
        )
        self.dashboard = Dashboard(self.api_services, self.changes, self.store)

    @property
    def config(self) -> Config:
        """The config in force (a SIGHUP reload replaces it: controller/reload.py)."""
        return self.live.current

    def connector_energy(self, charger_id: str, connector_id: int) -> tuple[float | None, bool]:
        """(import register Wh, online) of the connector meter of a charger with meter =
        "connector-meter": its latest reading, kept while it is offline; (None, False) otherwise."""
        charger = self.config.charger(charger_id)
        if charger is None or charger.meter != "connector-meter":
            return None, False
        for meter in self.hardware.meters.values():
            state = meter.state
            if state.role == "connector" and (state.charger, state.connector) == (charger_id, connector_id):
                return state.energy_import_wh, state.online
        return None, False

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """Run until `shutdown()`; reports itself started once both listeners accept."""
        for load in (self.chargers.load, self.authorization.load, self.transactions.load, self.reservations.load,
                     self.local_lists.load, self.profiles.load, self.passwords.load):
            try:
                await load()
            except integrity.DatabaseDamaged as exc:  # serve chargers from what still works
                log.critical("starting without part of the books: %s", exc)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel = nursery.cancel_scope
                await nursery.start(self.clock.run)  # judged before the first charger is answered
                await nursery.start(self.jobs.run)
                nursery.start_soon(dashboard_watch, self.api_services, self.changes)
                with _binding(self.config, "ocpp.listen"):
                    self.ocpp_port = await nursery.start(self.ocpp.run)
                with _binding(self.config, "api.listen"):
                    binds = await nursery.start(serve_api, self.api_services, self.http_gate, self._stopping,
                                                self.dashboard)
                self.api_port = int(binds[0].rsplit(":", 1)[1])
                log.info("API listening on %s", " ".join(binds))
                if self.config.public_charging.listen is not None:
                    with _binding(self.config, "public_charging.listen"):
                        binds = await nursery.start(serve_public, self.api_services, self.public_gate, self._stopping)
                    self.public_port = int(binds[0].rsplit(":", 1)[1])
                    log.info("public charging listening on %s", " ".join(binds))
                nursery.start_soon(self.transactions.expire_pending_forever)
                await nursery.start(self.reservations.run)
                nursery.start_soon(retention.prune_forever, self.store, self.live)
                await nursery.start(self.public_charging.run)
                await nursery.start(self.upstream.run)
                await nursery.start(self.card_decisions.run)
                await nursery.start(self.tap_to_charge.run)
                await nursery.start(self.hardware.run, self.changes.relay("tap", self.tap_to_charge.on_tap),
                                    self.changes.relay("meter", self.load.on_reading))
                await nursery.start(self.load.run)
                if self.forwarder is not None:
                    await nursery.start(self.forwarder.run)
                nursery.start_soon(metrics.watch_loop_lag)
                nursery.start_soon(integrity.watch, self.store)
                log.info("site %r ready: ocpp_port=%d api_port=%d", self.config.site.name, self.ocpp_port, self.api_port)
                task_status.started(self)
        finally:
            self.store.close()

    async def shutdown(self) -> None:
        """Close chargers' connections, let in-flight writes finish, then stop everything."""
        self._stopping.set()
        self.changes.close()  # the dashboard's open pages reconnect to the next run
        with trio.move_on_after(SHUTDOWN_GRACE_S):
            await self.ocpp.close_all()
            await self.chargers.book_readings()  # the live readings written only now and then
        if self._cancel is not None:
            self._cancel.cancel()

    async def health(self) -> dict:
        """What /healthz answers: see controller.health (checks, and when it is 503)."""
        return await health.check(self.store, self.chargers, self.ocpp_port, self.health_checks)
