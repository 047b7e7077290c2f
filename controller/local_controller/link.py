"""One charger's connection to the central system above the site.

The site speaks to the central system as that charger would (in its OCPP version, `versions.py`;
url + "/" + its upstream id): a BootNotification first, then the charger's queued messages in
order, each deleted once answered, and our own Heartbeats while there is nothing to send. The
central system's calls go to `dispatch` (commands.py). A lost connection is tried again with
backoff; what queued meanwhile is replayed, oldest first, with the timestamps it had.

Each message goes up in the version the charger sent it in: a connection speaks the version of the
oldest message queued (else the charger's), and once the next message, or the charger itself,
speaks another, the link closes it and connects again in that one. A charger that changed version
while messages waited (new firmware) has them sent as they were, then what it said since.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from urllib.parse import urlsplit

import orjson
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from controller.authorization import IdTag
from controller.csms.frames import OcppError
from controller.csms.rpc import RpcSession
from controller.local_controller.transaction_ids import TransactionIds
from controller.local_controller.versions import UpstreamVersion
from controller.store import Store
from controller.store import forwarding as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.local_controller")

BATCH = 100  # queued rows read at once while replaying
CONNECT_S = 10.0  # TCP, TLS and WebSocket handshakes, together
OFFERED_MAX = 1000  # rows handed over in memory at most; beyond, they are read from disk
CLOSE_S = 0.2  # how long a goodbye to the central system may take
FLUSH_S = 1.0  # answered rows are deleted at most this often (a crash sends this much again)
DEFAULT_INTERVAL_S = 300  # a boot answer with no usable interval
RETRY_BOOT_MIN_S = 1  # a Pending / Rejected boot is tried again after its interval, at least this

Dispatch = Callable[[str, dict], Awaitable[dict]]
CardAnswer = Callable[[IdTag], Awaitable[None]]  # the central system's word on a card


class NotRegistered(Exception):
    """The central system answered a BootNotification with Pending or Rejected."""


@dataclass(frozen=True)
class Target:
    """Where and how one charger's link connects."""

    url: str  # the central system's URL + "/" + the upstream id
    upstream_id: str
    password: str | None
    ssl_context: ssl.SSLContext | None
    reconnect_max_s: float
    call_timeout_s: float
    version: UpstreamVersion  # what the charger speaks to the site (a connection: what its messages were sent in)


class UpstreamLink:
    def __init__(self, charger_id: str, target: Callable[[], Target], versions: Callable[[str], UpstreamVersion],
                 store: Store, ids: TransactionIds, dispatch: Dispatch, card_answer: CardAnswer | None = None) -> None:
        """`target` is read at every connection (a reload may have changed it); `versions`: the
        version of a subprotocol a message was queued in."""
        self.charger_id = charger_id
        self.target = target
        self.versions = versions
        self.store = store
        self.ids = ids
        self.dispatch = dispatch
        self.card_answer = card_answer
        self.connected = False
        self.since: str | None = None  # when it connected, or went down (ISO 8601 UTC)
        self.last_error: str | None = None
        self.registration: str | None = None  # the central system's last boot answer
        self.version: UpstreamVersion | None = None  # of the connection (or the last one)
        self.forwarded = 0  # messages the central system answered, since start
        self._wake = trio.Event()
        self._answered: list[int] = []  # rows the central system answered, not deleted yet
        self._flush_at = 0.0  # Trio time by which they are
        # Rows committed since the queue was last read, handed over in memory: while `_synced`,
        # they are all the queue holds past what was sent (read back from disk once a second).
        self._offered: deque[dict] = deque(maxlen=OFFERED_MAX)
        self._synced = False
        self._seen = 0  # the newest row taken for sending (a row handed over twice goes once)

    def offer(self, row: dict) -> None:
        """A row just committed to the queue: send it now if connected."""
        if len(self._offered) == OFFERED_MAX:
            self._synced = False  # too many waiting: read them back from disk
        self._offered.append(row)
        self._wake.set()

    # -- the connection ----------------------------------------------------------------------

    async def run(self) -> None:
        delay = 1.0
        while True:
            wait, switched = delay, False
            try:
                await self._until_there_is_a_boot()
                target = await self._target()
                async with trio.open_nursery() as nursery:
                    ws = await connect(nursery, target)
                    delay = wait = 1.0
                    self.version = target.version
                    session = RpcSession(ws, self.charger_id, self.dispatch, target.call_timeout_s,
                                         target.version.dialect)
                    self._up()
                    log.info("charger=%s connected to the central system at %s", self.charger_id, target.url)
                    nursery.start_soon(self._serve, session, nursery.cancel_scope)
                    try:
                        switched = await self._pump(session)
                    finally:
                        nursery.cancel_scope.cancel()
                        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_S):
                            await ws.aclose()  # a goodbye, not waited for long: the reader may be gone
            except Exception as exc:  # noqa: BLE001 - the uplink fails in many ways; each is retried
                leaf = _leaf(exc)
                if isinstance(leaf, NotRegistered):
                    self._down(str(leaf.args[0]))
                    wait = leaf.args[1]  # the interval it gave
                else:
                    self._down(_describe(leaf))
                    delay = min(delay * 2, self.target().reconnect_max_s)
            else:
                if switched:
                    log.info("charger=%s: its %s messages are answered; connecting again in its next version",
                             self.charger_id, target.version.subprotocol)
                    continue
                self._down("the central system closed the connection")
            log.warning("charger=%s central system link down (%s); again in %.0f s", self.charger_id,
                        self.last_error, wait)
            await trio.sleep(wait)

    async def _target(self) -> Target:
        """Where to connect, in the version of the oldest message queued (it goes first), else in
        the charger's."""
        target = self.target()
        rows = await self.store.read(q.head, self.charger_id)
        return replace(target, version=self.versions(rows[0]["protocol"])) if rows else target

    async def _serve(self, session: RpcSession, scope: trio.CancelScope) -> None:
        await session.run()
        scope.cancel()

    def _up(self) -> None:
        self.connected, self.since, self.last_error = True, now_iso(), None

    def _down(self, error: str) -> None:
        if self.connected or self.since is None:  # went down, or never came up
            self.since = now_iso()
        self.connected = False
        self.last_error = error

    @property
    def unflushed(self) -> int:
        """Rows answered by the central system and still on disk (deleted within FLUSH_S)."""
        return len(self._answered)

    async def _until_there_is_a_boot(self) -> None:
        """A charger that never booted has nothing to introduce itself with: wait for it."""
        while True:
            self._wake = trio.Event()
            if (await self.store.read(q.head, self.charger_id)) or await self.store.read(q.boot_info, self.charger_id):
                return
            await self._wake.wait()

    # -- what goes up ------------------------------------------------------------------------

    async def _pump(self, session: RpcSession) -> bool:
        """Send the queue, oldest first; read it again when woken (or after a full batch). True once
        what is queued next, or the charger when nothing is, speaks another version than this
        connection: the link connects again in that one."""
        version = self.version
        assert version is not None  # set at connection
        interval = await self._boot(session, version)
        last_call = trio.current_time()
        try:
            while True:
                if self._answered and (trio.current_time() >= self._flush_at or len(self._answered) >= 10 * BATCH):
                    await self._flush()
                self._wake = woken = trio.Event()  # before the read: a row queued after it wakes us
                rows = await self._next_rows()
                for row in rows:
                    if row["protocol"] != version.subprotocol:
                        return True  # read again from disk on the next connection
                    await self._send(session, row)
                    last_call = trio.current_time()
                if len(rows) == BATCH:
                    continue
                if self.target().version is not version:  # all sent; the charger speaks another now
                    return True
                while not woken.is_set():
                    idle_until = last_call + interval
                    with trio.move_on_at(min(idle_until, self._flush_at) if self._answered else idle_until):
                        await woken.wait()
                    if self._answered and trio.current_time() >= self._flush_at:
                        await self._flush()
                    if not woken.is_set() and trio.current_time() >= idle_until:
                        await session.call("Heartbeat", {})  # ours: keeps the link alive, finds it dead
                        last_call = trio.current_time()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush()

    async def _next_rows(self) -> list:
        """What to send next, oldest first: the rows handed over in memory while they are all
        there is, else the queue read from disk (past what was answered)."""
        if self._synced:
            rows = sorted((r for r in self._offered if r["id"] > self._seen), key=lambda r: r["id"])
            self._offered = deque(maxlen=OFFERED_MAX)
        else:
            after = self._after()
            rows = await self.store.read(q.head, self.charger_id, BATCH, after)
            self._seen = rows[-1]["id"] if rows else after  # every row up to it is in `rows`
            self._synced = len(rows) < BATCH  # all read: what comes next is handed over
        if rows:
            self._seen = max(self._seen, rows[-1]["id"])
        return rows

    def _after(self) -> int:
        """The queue is read past the rows answered but not yet deleted."""
        return max(self._answered) if self._answered else 0

    def _done(self, row_id: int) -> None:
        if not self._answered:
            self._flush_at = trio.current_time() + FLUSH_S
        self._answered.append(row_id)

    async def _flush(self) -> None:
        """Delete the answered rows: one commit for many, off the chargers' round trips. The queue
        is read from disk next (a row committed but never handed over is not left behind)."""
        self._synced = False
        if self._answered:
            answered, self._answered = self._answered, []
            await self.store.write(q.answered, self.charger_id, answered)

    async def _boot(self, session: RpcSession, version: UpstreamVersion) -> float:
        """Introduce the charger (its boot queued in this version, else its last one in this
        version's words); the heartbeat interval."""
        rows = await self.store.read(q.head, self.charger_id)
        row = rows[0] if rows and rows[0]["action"] == "BootNotification" \
            and rows[0]["protocol"] == version.subprotocol else None
        if row is not None:
            payload = orjson.loads(row["payload"])
        else:
            payload = version.introduction(await self.store.read(q.boot_info, self.charger_id) or {})
        answer = await session.call("BootNotification", payload)
        if row is not None:  # the charger's own, forwarded
            self.forwarded += 1
            self._done(row["id"])
        return self._registered(answer)

    def _registered(self, answer: dict) -> float:
        self.registration = answer.get("status")
        interval = answer.get("interval")
        interval = float(interval) if isinstance(interval, int) and interval > 0 else DEFAULT_INTERVAL_S
        if self.registration != "Accepted":
            log.warning("charger=%s: the central system answered its boot %s; charging goes on locally",
                        self.charger_id, self.registration)
            raise NotRegistered(f"boot answered {self.registration} by the central system",
                                max(interval, RETRY_BOOT_MIN_S))
        return interval

    async def _send(self, session: RpcSession, row: dict) -> None:
        action, version = row["action"], self.version
        assert version is not None  # set at connection
        payload = await version.outgoing(row, orjson.loads(row["payload"]), self.ids)
        if payload is None:
            self._done(row["id"])
            return
        try:
            answer = await session.call(action, payload)
        except OcppError as err:  # refused as it is: sending it again would not change that
            log.warning("charger=%s: the central system refused %s: %s %s", self.charger_id, action, err.code,
                        err.description)
            self.last_error = f"{action} refused: {err.code} {err.description}"
            self._done(row["id"])
            return
        self.forwarded += 1
        await version.answered(self.charger_id, row, answer, self.ids)
        self._done(row["id"])
        if action == "BootNotification":
            self._registered(answer)
        if self.card_answer is not None and (tag := version.card(payload, answer)) is not None:
            await self.card_answer(tag)


async def connect(nursery: trio.Nursery, target: Target) -> WebSocketConnection:
    """The WebSocket to the central system; over TLS the handshake is done first, so a certificate
    that does not check out is named at once (not a timeout of the WebSocket handshake)."""
    url = urlsplit(target.url)
    host, tls = url.hostname or "", url.scheme == "wss"
    port = url.port or (443 if tls else 80)
    resource = (url.path or "/") + (f"?{url.query}" if url.query else "")
    with trio.fail_after(CONNECT_S):
        if tls:
            stream = await trio.open_ssl_over_tcp_stream(host, port, ssl_context=target.ssl_context,
                                                         https_compatible=True)
            await stream.do_handshake()
        else:
            stream = await trio.open_tcp_stream(host, port)
        return await wrap_client_stream(nursery, stream, host if port in (80, 443) else f"{host}:{port}", resource,
                                        subprotocols=[target.version.subprotocol], extra_headers=_auth(target))


def _auth(target: Target) -> list[tuple[bytes, bytes]]:
    if target.password is None:
        return []
    token = base64.b64encode(f"{target.upstream_id}:{target.password}".encode()).decode()
    return [(b"Authorization", f"Basic {token}".encode())]


def _describe(exc: BaseException) -> str:
    """What went wrong, in a line: the cause of a wrapped failure (a TLS error inside a broken
    stream), the type when the message says nothing."""
    while exc.__cause__ is not None and not str(exc).strip(" :"):
        exc = exc.__cause__
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _leaf(exc: BaseException) -> BaseException:
    """The first failure inside Trio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
