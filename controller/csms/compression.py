"""WebSocket compression (RFC 7692 permessage-deflate) for the chargers that offer it.

OCPP-J 2.0.1 requires a central system to support it. wsproto, under trio-websocket, implements
the extension, but trio-websocket's `accept()` does not pass extensions through; this accepts a
handshake the way `WebSocketRequest.accept` does, with the extension offered to wsproto, which
agrees to it only if the client asked for it.
"""

from __future__ import annotations

from trio_websocket import WebSocketConnection, WebSocketRequest
from wsproto.events import AcceptConnection
from wsproto.extensions import PerMessageDeflate


def offers_compression(request: WebSocketRequest) -> bool:
    return any(e.split(";")[0].strip().lower() == "permessage-deflate" for e in request._event.extensions)


async def accept_compressed(request: WebSocketRequest, subprotocol: str | None) -> WebSocketConnection:
    """Accept like `request.accept(subprotocol=...)`, agreeing to permessage-deflate if offered."""
    connection = request._connection
    connection._subprotocol = subprotocol
    connection._path = request._event.target
    await connection._send(AcceptConnection(subprotocol=subprotocol, extensions=[PerMessageDeflate()]))
    connection._open_handshake.set()
    return connection
