"""A real HTTP/1.1 receiver for upstream notifications, misbehaving on demand.

It runs in the test's Trio loop on a real loopback socket (so under a MockClock its delays are
mock time). Every request is recorded, whatever the answer. Behaviours, queued with `plan(...)`
and otherwise `default`:

    Reply(200), Reply(503, headers={"Retry-After": "120"}), Reply(200, body=b'{"amount": "1.20"}')
    Reply(200, delay=3)            answer slowly (after `delay` seconds)
    RESET                          reset the connection (RST) without an answer
    HANG                           read the request, never answer
    receiver.down() / up()         stop listening (connection refused) / listen again, same port

`plan` may also take a function `request -> behaviour`.
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Union

import h11
import orjson
import trio


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


RESET = "reset"
HANG = "hang"
Behaviour = Union[Reply, str, Callable[["Received"], Any]]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # trio.current_time() when the request was complete
    answer: Any = None

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-evedge-event-id"]


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default: Behaviour = Reply(200)
        self._plan: deque[Behaviour] = deque()
        self.port: int | None = None
        self._scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, *behaviours: Behaviour) -> None:
        self._plan.extend(behaviours)

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 100_000) -> list[Received]:
        with trio.fail_after(timeout):
            while not predicate(self.requests):
                changed = self._changed
                await changed.wait()
        return self.requests

    async def wait_count(self, n: int, timeout: float = 100_000) -> list[Received]:
        return await self.wait_for(lambda r: len(r) >= n, timeout)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        return [r for r in self.requests if isinstance(r.answer, Reply) and 200 <= r.answer.status < 300]

    # -- serving -----------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self._listen)
            task_status.started(self)
            await trio.sleep_forever()  # keeps the nursery open for up() after down()

    async def _listen(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            listeners = await trio.open_tcp_listeners(self.port or 0, host="127.0.0.1")
            self.port = listeners[0].socket.getsockname()[1]
            async with trio.open_nursery() as handlers:
                handlers.start_soon(partial(trio.serve_listeners, self._connection, listeners, handler_nursery=handlers))
                task_status.started()

    def down(self) -> None:
        """Stop listening and drop every open connection: the upstream is unreachable."""
        assert self._scope is not None
        self._scope.cancel()

    async def up(self) -> None:
        assert self._nursery is not None
        await self._nursery.start(self._listen)

    def _next(self, request: Received) -> Any:
        behaviour = self._plan.popleft() if self._plan else self.default
        while callable(behaviour):
            behaviour = behaviour(request)
        return behaviour

    def _record(self, request: Received) -> None:
        self.requests.append(request)
        self._changed.set()
        self._changed = trio.Event()

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(stream, conn)
                if request is None:
                    return
                behaviour = self._next(request)
                request.answer = behaviour
                self._record(request)
                if behaviour == RESET:
                    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if behaviour == HANG:
                    await trio.sleep_forever()
                assert isinstance(behaviour, Reply), behaviour
                if behaviour.delay:
                    await trio.sleep(behaviour.delay)
                headers = [("Content-Length", str(len(behaviour.body))), *behaviour.headers.items()]
                if behaviour.body:
                    headers.append(("Content-Type", "application/json"))
                data = conn.send(h11.Response(status_code=behaviour.status, headers=headers))
                data += conn.send(h11.Data(data=behaviour.body)) if behaviour.body else b""
                data += conn.send(h11.EndOfMessage())
                await stream.send_all(data)
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    @staticmethod
    async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> Received | None:
        method = path = ""
        headers: dict[str, str] = {}
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data and conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                method, path = event.method.decode(), event.target.decode()
                headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Received(method, path, headers, body, trio.current_time())
            elif isinstance(event, h11.ConnectionClosed):
                return None
