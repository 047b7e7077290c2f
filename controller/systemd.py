"""The systemd notify protocol (sd_notify), in a few lines instead of a dependency.

Under `Type=notify` systemd passes $NOTIFY_SOCKET, a datagram socket (a path, or an abstract
name written with a leading '@'). We send:

- `READY=1` once both listeners accept, so `systemctl start` returns when the site can serve;
- `WATCHDOG=1` every WATCHDOG_USEC/2 from a Trio task: a loop that is blocked (a stuck call,
  a busy loop) stops the pings and systemd restarts the service;
- `STOPPING=1` when a shutdown begins, and `RELOADING=1` ... `READY=1` around a SIGHUP reload.

Outside systemd (no $NOTIFY_SOCKET) every function is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

import trio

log = logging.getLogger("evedge.systemd")


def _address(value: str) -> str | bytes:
    if value.startswith("@"):
        return "\0" + value[1:]  # Linux abstract namespace
    return value


_socket: socket.socket | None = None
"""The one datagram socket every notification goes out on: a ping needs no new descriptor, so a
process out of descriptors (a flood of LAN connections) still keeps its watchdog fed."""


def _notify_socket() -> socket.socket:
    global _socket
    if _socket is None:
        _socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        _socket.setblocking(False)  # never stall the loop if the receiver's queue is full
    return _socket


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "WATCHDOG=1", ...) to systemd; False when not under systemd."""
    env = os.environ if environ is None else environ
    target = env.get("NOTIFY_SOCKET")
    if not target:
        return False
    try:
        _notify_socket().sendto(state.encode(), _address(target))
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", target, exc)
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when no watchdog is set."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or not env.get("NOTIFY_SOCKET"):
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were started by a wrapper)
    return int(usec) / 1e6 / 2


async def watchdog(interval: float | None = None, environ: dict[str, str] | None = None) -> None:
    """Ping systemd's watchdog forever from the Trio loop itself; returns at once without one."""
    interval = interval if interval is not None else watchdog_interval(environ)
    if interval is None:
        return
    log.info("systemd watchdog: pinging every %.3gs", interval)
    while True:
        notify("WATCHDOG=1", environ)
        await trio.sleep(interval)
