"""File descriptors: the process's budget, and the share kept for chargers and systemd.

Every charger connection, every HTTP connection, the database files and the systemd notify
socket each hold one descriptor. A LAN client that opens HTTP connections as fast as it can must
never take the last ones: chargers could not connect and the watchdog could not ping. So the
controller raises its soft limit to the hard one at start, and the HTTP listener accepts only
while more than RESERVE descriptors are free (controller/api/http_server.py).
"""

from __future__ import annotations

import logging
import os
import resource

log = logging.getLogger("evedge")
RESERVE = 256
"""Descriptors the HTTP listener never takes: chargers' connections, the database, the watchdog."""


def raise_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


def free() -> int | None:
    """Descriptors this process may still open, or None where that cannot be counted (no /proc)."""
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    return soft - in_use
