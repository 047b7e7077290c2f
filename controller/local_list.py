"""Chargers' local authorization lists, kept in step with the site's id tags.

A charger with a local list answers a card from it when it cannot reach us. The id-tag table is
the source: a charger gets the whole list once (a full update), then each change as it happens (a
differential update naming the changed tag, or naming it without a status to remove it). Every
update carries a version one above the last; the version the charger holds is stored per charger
and checked (GetLocalListVersion) when it boots or reconnects: a charger that lost its list, or
missed changes while offline, gets the full list again.

A charger that answers NotSupported (or keeps no list: version -1) is remembered and left alone.
A Failed or VersionMismatch answer is retried once with a full list; if that fails too the state
says so and the next boot tries again. A list longer than the charger takes in one update
(SendLocalListMaxLength) goes out as a full update of the first part and differential updates of
the rest; a charger that does not say how many it takes gets the whole list at once.

`[ocpp] local_list = "off"` leaves every charger's list alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from controller.authorization import Authorization, IdTag
from controller.charger_jobs import SETTLE_S, ChargerJobs
from controller.chargers import ChargerLink, ChargerRegistry, ChargerState
from controller.errors import AnswerLost, ChargerCallError, ChargerOffline
from controller.live_config import LiveConfig
from controller.store import Store
from controller.store import local_lists as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.local_list")
JOB = "local-list"
STATES = ("unknown", "syncing", "synced", "stale", "failed", "unsupported")
"""unknown: never synced; syncing: an update is on its way; synced: the charger holds `version`;
stale: changes wait for the charger (it is offline, or did not answer); failed: it refused the
full list (`detail` says how); unsupported: it keeps no local list."""
_UNSUPPORTED_ERRORS = ("NotSupported", "NotImplemented")


@dataclass(frozen=True)
class LocalListEntry:
    """One entry of an update: `tag` None removes `id_tag` from the charger's list."""

    id_tag: str
    tag: IdTag | None


@dataclass
class LocalListSync:
    """What we know of one charger's list."""

    version: int = 0
    state: str = "unknown"
    detail: str | None = None
    max_length: int | None = None
    synced_at: str | None = None


class _Refused(Exception):
    """The charger refused an update: its status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class LocalLists:
    def __init__(self, config: LiveConfig, store: Store, chargers: ChargerRegistry,
                 authorization: Authorization, jobs: ChargerJobs) -> None:
        self.config = config
        self.store = store
        self.chargers = chargers
        self.authorization = authorization
        self.jobs = jobs
        self.changed: dict[str, set[str]] = {}  # charger id -> id tags changed since its last update
        chargers.boot_listeners.append(self._check_soon)
        chargers.reconnect_listeners.append(self._check_soon)
        authorization.listeners.append(self.tag_changed)

    @property
    def pushing(self) -> bool:
        return self.config.current.ocpp.local_list == "push"

    async def load(self) -> None:
        for row in await self.store.read(q.all_local_lists):
            state = self.chargers.get(row["charger_id"])
            if state is not None:
                state.local_list = LocalListSync(row["version"], row["state"], row["detail"], row["max_length"],
                                                 row["synced_at"])

    def sync_of(self, state: ChargerState) -> LocalListSync:
        if state.local_list is None:
            state.local_list = LocalListSync()
        return state.local_list

    # -- triggers ------------------------------------------------------------------------------

    def _check_soon(self, state: ChargerState) -> None:
        if self.pushing and self.sync_of(state).state != "unsupported":
            self.jobs.submit(state.id, JOB, lambda: self.sync(state.id, check=True), delay_s=SETTLE_S)

    def tag_changed(self, id_tag: str) -> None:
        """An id tag was stored or deleted: every charger that keeps a list hears of it."""
        if not self.pushing:
            return
        for state in self.chargers.all():
            if state.registration != "accepted" or self.sync_of(state).state == "unsupported":
                continue
            self.changed.setdefault(state.id, set()).add(id_tag)
            self.jobs.submit(state.id, JOB, lambda charger_id=state.id: self.sync(charger_id))

    # -- the work ------------------------------------------------------------------------------

    async def sync(self, charger_id: str, check: bool = False) -> None:
        """Bring one charger's list up to date: the changes since its last update, or the whole
        list when it holds none, another version than ours (`check` asks it), or refused one."""
        state = self.chargers.get(charger_id)
        if state is None or not self.pushing:
            return
        sync = self.sync_of(state)
        if sync.state == "unsupported":
            return
        link = state.link
        if link is None:  # offline: the books say it misses changes, so it gets the whole list later
            if self.changed.get(charger_id) and sync.state == "synced":
                await self._record(state, sync, "stale")
            return
        changed = self.changed.pop(charger_id, set())
        try:
            if check or sync.state == "unknown":
                held = await link.local_list_version()
                if held < 0:
                    await self._record(state, sync, "unsupported", detail="the charger keeps no local list (version -1)")
                    return
                if held != sync.version:
                    sync.state = "stale"
                sync.version = max(sync.version, held)
                if sync.max_length is None:
                    sync.max_length = await link.local_list_max_length()
            if sync.state == "synced" and not changed:
                return
            if sync.state == "synced" and (not sync.max_length or len(changed) <= sync.max_length):
                entries = [LocalListEntry(t, self.authorization.get(t)) for t in sorted(changed)]
                try:
                    await self._send(state, link, sync, entries, full=False)
                    return
                except _Refused as refused:
                    if refused.status == "NotSupported":
                        raise
                    log.warning("charger=%s refused a local list update (%s): sending the whole list",
                                charger_id, refused.status)
                    sync.version = max(sync.version, await link.local_list_version())
            await self._send_full(state, link, sync)
        except _Refused as refused:
            if refused.status == "NotSupported":
                await self._record(state, sync, "unsupported", detail="the charger answered NotSupported")
            else:
                log.error("charger=%s refused the whole local list (%s): it is tried again at its next boot",
                          charger_id, refused.status)
                await self._record(state, sync, "failed", detail=f"the charger answered {refused.status}")
        except ChargerCallError as exc:
            if exc.error_code in _UNSUPPORTED_ERRORS:
                await self._record(state, sync, "unsupported", detail=f"the charger answered {exc.error_code}")
            else:
                await self._record(state, sync, "failed", detail=exc.message)
        except (ChargerOffline, AnswerLost):
            self.changed.setdefault(charger_id, set()).update(changed)
            await self._record(state, sync, "stale")

    async def _send_full(self, state: ChargerState, link: ChargerLink, sync: LocalListSync) -> None:
        """The whole list, in parts when the charger takes fewer entries per update; once more
        when it answers Failed or VersionMismatch (asking its version first)."""
        tags = sorted(self.authorization.tags.values(), key=lambda t: t.id_tag.casefold())
        entries = [LocalListEntry(t.id_tag, t) for t in tags]
        size = sync.max_length if sync.max_length and sync.max_length > 0 else max(1, len(entries))
        parts = [entries[i:i + size] for i in range(0, len(entries), size)] or [[]]
        if len(parts) > 1:
            log.info("charger=%s takes %d local list entries per update: the %d tags go out in %d updates",
                     state.id, size, len(entries), len(parts))
        for attempt in (1, 2):
            try:
                for index, part in enumerate(parts):
                    await self._send(state, link, sync, part, full=index == 0)
                return
            except _Refused as refused:
                if attempt == 2 or refused.status not in ("Failed", "VersionMismatch"):
                    raise
                log.warning("charger=%s answered %s to its local list: sending it again", state.id, refused.status)
                sync.version = max(sync.version, await link.local_list_version())

    async def _send(self, state: ChargerState, link: ChargerLink, sync: LocalListSync,
                    entries: list[LocalListEntry], full: bool) -> None:
        version = sync.version + 1
        await self._record(state, sync, "syncing")
        answer = await link.send_local_list(version, full, entries)
        if answer != "Accepted":
            raise _Refused(str(answer))
        sync.version = version
        await self._record(state, sync, "synced", synced_at=now_iso())
        log.info("charger=%s local list version %d (%s, %d entries)", state.id, version,
                 "full" if full else "differential", len(entries))

    async def _record(self, state: ChargerState, sync: LocalListSync, status: str, *, detail: str | None = None,
                      synced_at: str | None = None) -> None:
        """The books first, then memory: what the API shows has been committed."""
        synced_at = sync.synced_at if synced_at is None else synced_at
        await self.store.write(q.put_local_list, state.id, sync.version, status, detail, sync.max_length, synced_at)
        sync.state, sync.detail, sync.synced_at = status, detail, synced_at
