"""The WebSocket listener chargers dial into.

Each connection is its own task and catches everything: an exception escaping one
trio-websocket handler would otherwise tear down the whole server and every other charger.
The handshake is where chargers are vetted (docs/security.md): the connection limit per source
address, then HTTP Basic auth (security profile 1, over TLS for profile 2), then admission.
"""

from __future__ import annotations

import logging
from functools import partial
from urllib.parse import unquote, urlsplit

import trio
from trio_websocket import Endpoint, WebSocketRequest, serve_websocket

from controller.charger_passwords import ChargerPasswords
from controller.chargers import ChargerRegistry, Protocol, usable_charger_id
from controller.config import parse_listen
from controller.csms import adapter, v16, v201
from controller.csms.compression import accept_compressed
from controller.csms.security import AddressLimiter, check_basic_auth, ocpp_tls_context
from controller.live_config import LiveConfig
from controller.transactions import Transactions

log = logging.getLogger("evedge.ocpp")
# The versions we speak, preferred first when a charger offers several.
VERSIONS = {v201.SUBPROTOCOL: v201, v16.SUBPROTOCOL: v16}
PROTOCOLS: dict[str, Protocol] = {name: version.PROTOCOL for name, version in VERSIONS.items()}
ASSUMED = v16.SUBPROTOCOL  # for a charger that offers no subprotocol (some 1.6 firmware)
UNAUTHORIZED = [(b"WWW-Authenticate", b'Basic realm="evedge"')]
BUSY = [(b"Retry-After", b"30")]


def charger_id_from_path(path: str) -> str | None:
    """The charge box id is the last path segment: `/ocpp/CP1`, `/steve/websocket/CP1`, `/CP1`."""
    segments = [s for s in urlsplit(path).path.split("/") if s]
    return unquote(segments[-1]) if segments else None


def _address(remote: Endpoint | str) -> str:
    """The source IP of a connection (the whole repr for a non-socket stream)."""
    return str(remote.address) if isinstance(remote, Endpoint) else remote


class OcppServer:
    def __init__(self, config: LiveConfig, chargers: ChargerRegistry, transactions: Transactions,
                 passwords: ChargerPasswords | None = None, forward: adapter.Forward | None = None) -> None:
        """`forward`: local-controller mode's hook, handed every charger's calls (adapter.py)."""
        self.config = config
        self.passwords = passwords  # keys set by rotation, before the config file's
        self._newest_key: set[str] = set()  # handshakes just authenticated with a rotated key
        self.forward = forward
        self.chargers = chargers
        self.transactions = transactions
        self.port: int | None = None
        # Built here, not in run(): a bad certificate path is a config error at start-up.
        self.ssl_context = ocpp_tls_context(config.current)
        self.limiter = AddressLimiter(config.current.ocpp.max_connections_per_address)

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        ocpp = self.config.current.ocpp
        host, port = parse_listen(ocpp.listen)
        async with trio.open_nursery() as nursery:
            # connect_timeout bounds TCP accept to WebSocket upgrade, TLS handshake included (the
            # TLS stream shakes hands lazily inside trio-websocket's reader).
            server = await nursery.start(partial(
                serve_websocket, self._handle, host, port, self.ssl_context,
                handler_nursery=nursery, max_message_size=ocpp.max_frame_bytes,
                connect_timeout=ocpp.handshake_timeout_s, disconnect_timeout=2,
            ))
            self.port = server.port
            log.info("OCPP listening on %s://%s:%d/ocpp/{chargeBoxId}%s", "wss" if self.ssl_context else "ws",
                     host, server.port, " (Basic auth required)" if ocpp.require_password else "")
            task_status.started(server.port)

    async def _handle(self, request: WebSocketRequest) -> None:
        # `request.remote` is a getpeername() call: read it once, now. A client that sends and
        # closes at once leaves a closed socket, and an OSError from a log line here (even in the
        # except clause) would escape and take the whole listener, every charger, down with it.
        try:
            remote = request.remote
        except OSError:
            return  # gone before we got to it
        try:
            await self._serve(request, remote)
        except Exception:
            log.exception("OCPP connection from %s failed", remote)

    async def _serve(self, request: WebSocketRequest, remote: Endpoint | str) -> None:
        charger_id = charger_id_from_path(request.path)
        address = _address(remote)
        state = self.chargers.get(charger_id) if charger_id else None
        replacing = state is not None and state.link is not None and state.link.address == address
        if not self.limiter.try_acquire(address, replacing=replacing):
            log.warning("refused OCPP connection from %s: already %d open from this address"
                        " ([ocpp] max_connections_per_address)", address, self.limiter.open[address])
            await request.reject(503, extra_headers=BUSY)
            return
        try:
            await self._admit(request, charger_id, remote)
        finally:
            self.limiter.release(address)

    def _auth_problem(self, request: WebSocketRequest, charger_id: str) -> str | None:
        """Why this handshake fails security profile 1, or None. Never includes the secret."""
        rotation = self.passwords.get(charger_id) if self.passwords is not None else None
        if rotation is not None:
            if check_basic_auth(request.headers, charger_id, password=None, password_hash=rotation.password_hash) is None:
                self._newest_key.add(charger_id)
                return None
            if rotation.confirmed:
                return "wrong password (not its newest key)"
            if rotation.previous_hash is not None:
                return check_basic_auth(request.headers, charger_id, password=None,
                                        password_hash=rotation.previous_hash)
        config = self.config.current
        charger = config.charger(charger_id)
        password = charger.password if charger else None
        password_hash = charger.password_hash if charger else None
        if password is None and password_hash is None:
            return "no password configured (require_password)" if config.ocpp.require_password else None
        return check_basic_auth(request.headers, charger_id, password=password, password_hash=password_hash)

    async def _admit(self, request: WebSocketRequest, charger_id: str | None, remote: Endpoint | str) -> None:
        registry = self.chargers
        if charger_id and not usable_charger_id(charger_id):
            log.warning("refused OCPP connection from %s: charger id %r holds '/', '\\', '..' or a control"
                        " character", _address(remote), charger_id)
            await request.reject(400)
            return
        if charger_id and (problem := self._auth_problem(request, charger_id)):
            log.warning("refused charger=%r from %s: %s", charger_id, _address(remote), problem)
            await request.reject(401, extra_headers=UNAUTHORIZED)
            return
        if charger_id in self._newest_key and self.passwords is not None:
            self._newest_key.discard(charger_id)
            await self.passwords.connected_with_newest(charger_id)
        registration = registry.admission(charger_id) if charger_id else None
        if registration is None:
            log.warning("refused OCPP connection path=%s from %s: unknown charger", request.path, remote)
            await request.reject(404 if charger_id else 400)
            return
        offered = request.proposed_subprotocols
        chosen = next((name for name in VERSIONS if name in offered), None)
        if offered and chosen is None:
            log.warning("refused charger=%s: offers %s, not %s", charger_id, ",".join(offered), " or ".join(VERSIONS))
            await request.reject(400, body=f"supported: {', '.join(VERSIONS)}".encode())
            return
        if not offered:
            log.warning("charger=%s offered no subprotocol; assuming %s", charger_id, ASSUMED)
        if chosen == v201.SUBPROTOCOL:  # OCPP-J 2.0.1: compression when the charger asks for it
            ws = await accept_compressed(request, chosen)
        else:
            ws = await request.accept(subprotocol=chosen)
        version = VERSIONS[chosen or ASSUMED]
        state = registry.arriving(charger_id, registration)
        session, link = version.open_session(ws, state, registry, self.transactions, self.config, self.forward)
        session.address = _address(remote)
        await registry.connected(state, link)
        log.info("charger=%s connected from %s:%s", charger_id, remote.address, remote.port)
        try:
            await session.run(beside=partial(self.transactions.check_open_charges, charger_id))
        finally:
            with trio.CancelScope(shield=True):
                await registry.disconnected(state, link)

    async def close_all(self) -> None:
        """Say goodbye to every charger (WebSocket close 1001) before the controller exits."""
        await self.chargers.close_all(1001, "controller shutting down")
