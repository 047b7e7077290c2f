"""The last OCPP frames of each charger, for its dashboard page, taken from the frame log.

Only chargers in `[logging] frame_log` have frames logged (controller/logs.py); for the others
the page says how to turn it on. A few frames per charger are kept in memory, nothing on disk.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timezone

from controller.logs import frames_log

KEPT = 30


class RecentFrames(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.frames: dict[str, deque[tuple[str, str, str]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        charger = getattr(record, "charger", None)
        if charger is None or not isinstance(record.args, tuple) or len(record.args) != 3:
            return
        at = datetime.fromtimestamp(record.created, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        kept = self.frames.setdefault(charger, deque(maxlen=KEPT))
        kept.append((at, str(getattr(record, "dir", "")), str(record.args[2])))

    def of(self, charger_id: str) -> list[tuple[str, str, str]]:
        """(time, direction, frame) newest first."""
        return list(reversed(self.frames.get(charger_id, ())))


def recent_frames() -> RecentFrames:
    """The one handler on the frame log (several sites in one process share it)."""
    for handler in frames_log.handlers:
        if isinstance(handler, RecentFrames):
            return handler
    handler = RecentFrames()
    frames_log.addHandler(handler)
    return handler
