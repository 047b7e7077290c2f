"""The HTTP server under the REST API: hypercorn's HTTP/1.1 protocol, with a listener that keeps
one LAN client from taking the controller's descriptors.

- A connection the protocol says is over (`Connection: close`, HTTP/1.0) is closed by us. Hypercorn
  closes it from the application's task, which Quart has cancelled by then, so the close was
  skipped and the socket stayed open until the client went away; here the close is shielded.
  A connection the client closed ends at once, not when its keep-alive timer runs out.
- At most `[api] max_connections` HTTP connections are open at a time, each idle for at most
  KEEP_ALIVE_S; the listener accepts the next one only when one ends (the others wait in the
  kernel's backlog), and only while more than descriptors.RESERVE descriptors are free, so
  chargers and the systemd watchdog always find one.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config as HypercornConfig
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


class _Connection(TCPServer):
    """Hypercorn's connection handler, closing its socket even from a cancelled task, and as soon
    as the client has gone (not when the keep-alive timer runs out)."""

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):
            await super()._close()

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()  # the client closed: nothing to keep alive for


class ConnectionGate:
    """Counts open HTTP connections and holds the listener back when there are too many, or too
    few descriptors are left."""

    def __init__(self, max_connections: int, reserve: int | None = None) -> None:
        self.max_connections = max_connections
        self.reserve = descriptors.RESERVE if reserve is None else reserve
        self.open = 0
        self.waiting = False  # the listener is holding back: /metrics and tests can see it
        self._closed = trio.Event()
        self._warned = False

    def _room(self) -> bool:
        if self.open >= self.max_connections:
            return False
        free = descriptors.free()
        return free is None or free > self.reserve

    async def wait_for_room(self) -> None:
        while not self._room():
            self.waiting = True
            if not self._warned:
                self._warned = True
                log.warning("HTTP: %d connections open, %s descriptors free: new API connections wait",
                            self.open, descriptors.free())
            self._closed = trio.Event()
            with trio.move_on_after(RECHECK_S):
                await self._closed.wait()
        self.waiting = False

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1
        self._closed.set()
        if self.open == 0:
            self._warned = False


class _GatedListener(trio.abc.Listener[trio.SocketStream]):
    def __init__(self, inner: trio.SocketListener, gate: ConnectionGate) -> None:
        self.inner = inner
        self.gate = gate

    async def accept(self) -> trio.SocketStream:
        await self.gate.wait_for_room()
        stream = await self.inner.accept()
        self.gate.opened()  # counted before the next accept, not when its task starts
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
        try:
            await _Connection(wrapped, config, context, ConnectionState(lifespan_state.copy()), stream)  # type: ignore[arg-type]
        finally:
            gate.closed()

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            sockets = config.create_sockets()
            listeners, binds = [], []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                listeners.append(_GatedListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)), gate))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            async with trio.open_nursery() as accepting:
                accepting.start_soon(lambda: trio.serve_listeners(handle, listeners, handler_nursery=connections))
                task_status.started(binds)
                await shutdown.wait()
                accepting.cancel_scope.cancel()
            await context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
