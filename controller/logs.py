"""Logging to stdout, one line per event, so journald keeps it.

Two formats, chosen by `[logging] format`:

- text: `ts=2026-02-06T12:00:00.000Z level=info logger=evedge.ocpp msg="charger=CP1 connected"`
- json: `{"ts": "...", "level": "info", "logger": "evedge.ocpp", "msg": "..."}`

Fields passed with `extra={...}` are added as keys; a traceback becomes one `exc` field, so a
record is always one line. Under systemd ($JOURNAL_STREAM set) each line starts with the
syslog priority (`<4>`), which journald turns into the entry's priority: `journalctl -p warning`
then works.

The OCPP frame log (`[logging] frame_log = ["CHARGER-001"]`, or `["*"]` for every charger) logs
each frame to and from the listed chargers on the `evedge.frames` logger; the list can change
with a SIGHUP, also for connections already open.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable

import orjson

from controller.timefmt import iso
from datetime import datetime, timezone

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
frames_log = logging.getLogger("evedge.frames")
_frame_chargers: frozenset[str] = frozenset()


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict:
    out = {
        "ts": iso(datetime.fromtimestamp(record.created, timezone.utc)),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    if record.exc_info:
        out["exc"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        out["exc"] = record.exc_text
    return out


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and not any(c in text for c in ' "=\\\n\r\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


class _Formatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def _prefix(self, record: logging.LogRecord) -> str:
        return f"<{_SYSLOG.get(record.levelno, 6)}>" if self.journald else ""


class TextFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self)
        return self._prefix(record) + " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


class JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self)
        return self._prefix(record) + orjson.dumps(fields, default=str).decode()


def setup(level: str = "info", fmt: str = "text", frame_log: Iterable[str] = ()) -> None:
    journald = bool(os.environ.get("JOURNAL_STREAM"))
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(journald) if fmt == "json" else TextFormatter(journald))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    logging.getLogger("trio-websocket").setLevel(logging.WARNING)
    # httpx logs every request at INFO; upstream delivery logs each POST itself, with the event
    logging.getLogger("httpx").setLevel(logging.WARNING)
    apply(level, frame_log)


def apply(level: str, frame_log: Iterable[str]) -> None:
    """The parts that can change while running (SIGHUP): level and the frame-logged chargers."""
    global _frame_chargers
    logging.getLogger().setLevel(level.upper())
    _frame_chargers = frozenset(frame_log)
    # frames are logged at INFO whatever the level, so a frame log is never silently empty
    frames_log.setLevel(logging.INFO if _frame_chargers else logging.WARNING)


def frame_logger(charger_id: str) -> Callable[[str, str], None]:
    """The `frame_log` callback for one charger's RpcSession; checks the live list per frame."""

    def log_frame(direction: str, text: str) -> None:
        if charger_id in _frame_chargers or "*" in _frame_chargers:
            frames_log.info("charger=%s %s %s", charger_id, direction, text,
                            extra={"charger": charger_id, "dir": direction})

    return log_frame
