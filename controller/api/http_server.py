"""The HTTP server under the REST API: hypercorn's HTTP/1.1 protocol, with a listener that keeps
one LAN client from taking the controller's descriptors.

- A connection the protocol says is over (`Connection: close`, HTTP/1.0) is closed by us. Hypercorn
  closes it from the application's task, which Quart has cancelled by then, so the close was
  skipped and the socket stayed open until the client went away; here the close is shielded.
  A connection the client closed ends at once, not when its keep-alive timer runs out.
- At most `[api] max_connections` HTTP connections are open at a time, each idle for at most
  KEEP_ALIVE_S; the listener accepts the next one only when one ends (the others wait in the
  kernel's backlog; when the cap is reached, the oldest idle connection gives way to them), and
  only while more than descriptors.RESERVE descriptors are free, so chargers and the systemd
  watchdog always find one.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Event, Updated
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from controller import descriptors

log = logging.getLogger("evedge.http")
KEEP_ALIVE_S = 5.0
"""An idle keep-alive connection is closed after this long."""
READ_TIMEOUT_S = 30.0
"""A connection that sends nothing for this long (mid-request) is closed."""
RECHECK_S = 0.5
"""While descriptors are short, the listener looks again this often (they may be freed elsewhere)."""
RECOUNT_S = 1.0
RECOUNT_MARGIN = 128
"""Counting descriptors lists /proc/self/fd (milliseconds with thousands open): it is done again
after RECOUNT_S, or at every accept once fewer than `reserve + RECOUNT_MARGIN` may be free."""


class _Connection(TCPServer):
    """Hypercorn's connection handler, closing its socket even from a cancelled task, and as soon
    as the client has gone (not when the keep-alive timer runs out); tells the gate whether it is
    idle between requests, so a new client can take its place."""

    gate: ConnectionGate

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            self.gate.idle(self, event.idle)
        await super().protocol_send(event)

    def give_way(self) -> None:
        """Close this idle keep-alive connection now, as its keep-alive timer would."""
        try:
            self._task_group.spawn(self._initiate_server_close)
        except (AttributeError, RuntimeError):
            pass  # not started yet, or ending already: either way it frees its place by itself

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):
            await super()._close()

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()  # the client closed: nothing to keep alive for


class ConnectionGate:
    """Counts open HTTP connections; holds the listener back while too few descriptors are left,
    and a new connection while the cap is reached (an idle one gives way to it)."""

    def __init__(self, max_connections: int, reserve: int | None = None) -> None:
        self.max_connections = max_connections
        self.reserve = descriptors.RESERVE if reserve is None else reserve
        self.open = 0
        self._idle: dict[_Connection, None] = {}  # connections between requests, oldest first
        self.waiting = False  # a connection waits for its turn: tests can see it
        self._closed = trio.Event()
        self._warned = False
        self._counted: tuple[float, int | None] | None = None  # (when, free then)
        self._accepted_since_count = 0

    def _free(self) -> int | None:
        """Descriptors free, at most, from a recent count less what was accepted since."""
        now = trio.current_time()
        if self._counted is not None:
            at, free = self._counted
            estimate = None if free is None else free - self._accepted_since_count
            if now - at < RECOUNT_S and (estimate is None or estimate > self.reserve + RECOUNT_MARGIN):
                return estimate
        self._counted, self._accepted_since_count = (now, descriptors.free()), 0
        return self._counted[1]

    @property
    def busy(self) -> int:
        """Connections with a request in progress."""
        return self.open - len(self._idle)

    def idle(self, connection: _Connection, idle: bool) -> None:
        self._idle.pop(connection, None)
        if idle:
            self._idle[connection] = None

    async def wait_for_descriptors(self) -> None:
        """Before an accept: wait while no more than `reserve` descriptors are free (the oldest
        idle connection gives its descriptor back meanwhile)."""
        while (free := self._free()) is not None and free <= self.reserve:
            self._give_way()
            await self._hold(f"{free} descriptors free")
        self.waiting = False

    async def admit(self) -> None:
        """After an accept: count the connection in once the cap allows; while it does not, the
        oldest idle connection gives way."""
        while self.open >= self.max_connections:
            self._give_way()
            await self._hold(f"{self.open} connections open")
        self.waiting = False
        self.open += 1
        self._accepted_since_count += 1

    def _give_way(self) -> None:
        if self._idle:
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            oldest.give_way()

    async def _hold(self, why: str) -> None:
        self.waiting = True
        if not self._warned:
            self._warned = True
            log.warning("HTTP: %s: new API connections wait", why)
        self._closed = trio.Event()
        with trio.move_on_after(RECHECK_S):
            await self._closed.wait()

    def closed(self, connection: _Connection) -> None:
        self.open -= 1
        self._idle.pop(connection, None)
        self._closed.set()
        if self.open == 0:
            self._warned = False


class _GatedListener(trio.abc.Listener[trio.SocketStream]):
    def __init__(self, inner: trio.abc.Listener, gate: ConnectionGate) -> None:
        self.inner = inner
        self.gate = gate

    async def accept(self) -> trio.SocketStream:
        await self.gate.wait_for_descriptors()
        stream = await self.inner.accept()
        try:
            await self.gate.admit()  # counted before the next accept, not when its task starts
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream

    async def aclose(self) -> None:
        await self.inner.aclose()


async def serve(app: object, config: HypercornConfig, gate: ConnectionGate, shutdown: trio.Event,
                task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the ASGI `app` on `config.bind` until `shutdown` is set (then open requests get
    `config.graceful_timeout` to finish); reports the bound addresses ("http://host:port")."""
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.read_timeout = int(READ_TIMEOUT_S)
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)  # type: ignore[arg-type]
    lifespan_state: dict = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)

    async def handle(stream: trio.SocketStream) -> None:
        connection = _Connection(wrapped, config, context, ConnectionState(lifespan_state.copy()), stream)  # type: ignore[arg-type]
        connection.gate = gate
        gate.idle(connection, True)  # no request yet
        try:
            await connection
        finally:
            gate.closed(connection)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            sockets = config.create_sockets()
            listeners: list[_GatedListener] = []
            binds = []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                listeners.append(_GatedListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)), gate))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            for sock in sockets.secure_sockets:  # HTTPS (config.certfile/keyfile): the handshake is hypercorn's
                sock.listen(config.backlog)
                tls = trio.SSLListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)),
                                       config.create_ssl_context(), https_compatible=True)
                listeners.append(_GatedListener(tls, gate))
                binds.append(f"https://{repr_socket_addr(sock.family, sock.getsockname())}")
            async with trio.open_nursery() as accepting:
                accepting.start_soon(lambda: trio.serve_listeners(handle, listeners, handler_nursery=connections))
                task_status.started(binds)
                await shutdown.wait()
                accepting.cancel_scope.cancel()
            await context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
