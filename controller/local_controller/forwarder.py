"""The forwarder: every charger's link to the central system, and the hook the OCPP adapters hand
each charger call to (csms/adapter.py `Forward`), whichever OCPP version the charger speaks (its
`UpstreamVersion`: ocpp16.py, ocpp201.py).

A call to forward is queued in its own commit before the charger hears our answer, so nothing a
charger was answered is lost to a crash; the charger's link sends it when it can.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from controller.authorization import Authorization, IdTag
from controller.chargers import ChargerRegistry, ChargerState
from controller.live_config import LiveConfig
from controller.local_controller import ocpp16, ocpp201
from controller.local_controller.caps import UpstreamCaps
from controller.local_controller.commands import UpstreamCommands
from controller.local_controller.link import Target, UpstreamLink
from controller.local_controller.transaction_ids import TransactionIds
from controller.local_controller.versions import UpstreamVersion
from controller.store import Store
from controller.store import forwarding as q
from controller.transactions import Transactions
from controller.upstream.config import UpstreamOcppSection

log = logging.getLogger("evedge.local_controller")

VERSIONS = {version.subprotocol: version for version in (ocpp16.VERSION, ocpp201.VERSION)}


def version_of(protocol: str | None) -> UpstreamVersion:
    """Each charger is forwarded in the OCPP version it speaks to the site (its subprotocol; 1.6
    for one never seen)."""
    return VERSIONS.get(protocol or "", ocpp16.VERSION)


def tls_context(ca_file: Any) -> ssl.SSLContext:
    """Security profile 2 towards the central system: its certificate checked against `ca_file`
    (or the system's trust store)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


class Forwarder:
    def __init__(self, config: LiveConfig, store: Store, chargers: ChargerRegistry, transactions: Transactions,
                 authorization: Authorization, load: Any) -> None:
        """`load`: load management, for the upper bounds (LoadManager `set_cap`/`clear_caps`)."""
        self.config = config
        self.store = store
        self.chargers = chargers
        self.transactions = transactions
        self.authorization = authorization
        self.caps = UpstreamCaps(store, load)
        self.ids = TransactionIds(store)
        self.links: dict[str, UpstreamLink] = {}
        self._nursery: trio.Nursery | None = None
        ocpp = config.current.upstream.ocpp
        assert ocpp is not None
        self._started_with = ocpp
        # Built here: a bad ca_file is a config error at start-up.
        self._ssl = tls_context(config.current.upstream_ca_file) if ocpp.url.startswith("wss:") else None

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        """A link for every configured charger, and for any other with messages still queued; the
        central system's bounds from before a restart in force again."""
        await self.caps.restore()
        queued = await self.store.read(q.counts)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for charger_id in [c.id for c in self.config.current.chargers] + sorted(queued):
                self.link(charger_id)
            task_status.started()
            await trio.sleep_forever()  # links of chargers the site meets later start here too

    def link(self, charger_id: str) -> UpstreamLink:
        """The charger's link, started on first use (an unknown charger the site accepted, too)."""
        link = self.links.get(charger_id)
        if link is None:
            commands = UpstreamCommands(charger_id, self.config, self.section, self.chargers, self.transactions,
                                        self.ids, self.caps, partial(self.speaking, charger_id))
            link = self.links[charger_id] = UpstreamLink(charger_id, lambda: self.target(charger_id), version_of,
                                                         self.store, self.ids, commands, self.card_answer)
            if self._nursery is not None:
                self._nursery.start_soon(link.run)
        return link

    async def card_answer(self, tag: IdTag) -> None:
        """The central system's word on a card: remembered until its expiry, so the site decides
        as it would while the uplink is down (a refusal blocks the card here at once)."""
        await self.authorization.remember(tag)

    def version(self, charger_id: str) -> UpstreamVersion:
        """The version of the charger's last connection to the site."""
        state = self.chargers.get(charger_id)
        return version_of(state.protocol if state is not None else None)

    def speaking(self, charger_id: str) -> UpstreamVersion:
        """The version of the charger's link to the central system, which its calls come in (it
        may still be sending what the charger queued before it changed version), else the charger's."""
        link = self.links.get(charger_id)
        return link.version if link is not None and link.version is not None else self.version(charger_id)

    def section(self) -> UpstreamOcppSection:
        """[upstream.ocpp] in force (a reload may change it; the mode itself takes a restart)."""
        return self.config.current.upstream.ocpp or self._started_with

    def target(self, charger_id: str) -> Target:
        config = self.config.current
        ocpp = self.section()
        charger = config.charger(charger_id)
        upstream_id = config.upstream_id(charger_id) or charger_id
        password = (charger.upstream_password if charger else None) or ocpp.password
        return Target(f"{ocpp.url.rstrip('/')}/{upstream_id}", upstream_id, password, self._ssl,
                      ocpp.reconnect_max_s, ocpp.call_timeout_s, self.version(charger_id))

    async def forward(self, state: ChargerState, action: str, payload: dict,
                      handle: Callable[[dict], Awaitable[dict]]) -> dict:
        """The hook (csms/adapter.py `Forward`): the call is handled, and what the central system
        must hear is queued before the charger's answer, in the handler's own commit when it makes
        one (a 1.6 StartTransaction's row needs the id the handler gives: a commit of its own)."""
        version = version_of(state.protocol)
        if action not in version.forwarded or state.registration != "accepted":
            return await handle(payload)
        if action in version.queued_after_answer:
            answer = await handle(payload)
            row = q.queued_row(state.id, action, payload, version.transaction_of(action, payload, answer),
                               version.subprotocol)
            await self.store.write(q.enqueue, row)
        else:
            row = q.queued_row(state.id, action, payload, version.transaction_of(action, payload, None),
                               version.subprotocol)
            with self.store.beside_next_write(partial(q.enqueue, row=row)) as written:
                answer = await handle(payload)
            if not written():
                await self.store.write(q.enqueue, row)
        self.link(state.id).offer(row)
        return answer

    async def status(self) -> list[dict]:
        """Each charger's link, for the API and the metrics."""
        queued = await self.store.read(q.counts)
        for charger_id in queued:
            self.link(charger_id)
        return [{
            "chargeBoxId": charger_id, "upstreamId": link.target().upstream_id, "connected": link.connected,
            "since": link.since, "queued": max(0, queued.get(charger_id, 0) - link.unflushed),
            "forwarded": link.forwarded,
            "registration": link.registration, "lastError": link.last_error,
        } for charger_id, link in sorted(self.links.items())]
