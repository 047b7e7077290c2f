"""One line per event, text or JSON; the frame log follows the live charger list."""

from __future__ import annotations

import json
import logging

from controller import logs


def _record(msg: str, *args, exc: bool = False, **extra) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            import sys
            exc_info = sys.exc_info()
    record = logging.LogRecord("evedge.ocpp", logging.WARNING, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


def test_text_lines_are_key_value_and_one_line_even_with_a_traceback() -> None:
    line = logs.TextFormatter(journald=False).format(
        _record('charger=%s said "hi"\nthen left', "CP1", exc=True, charger="CP1"))
    assert "\n" not in line
    assert line.startswith("ts=") and " level=warning logger=evedge.ocpp " in line
    assert 'msg="charger=CP1 said \\"hi\\"\\nthen left"' in line
    assert " charger=CP1 " in line and ' exc="Traceback' in line and "ValueError: bad\\nthing" in line


def test_json_lines_parse_and_carry_extra_fields() -> None:
    line = logs.JsonFormatter(journald=False).format(_record("x=%d", 5, exc=True, charger="CP1", dir="in"))
    assert "\n" not in line
    record = json.loads(line)
    assert record["msg"] == "x=5" and record["level"] == "warning" and record["charger"] == "CP1"
    assert record["dir"] == "in" and record["exc"].endswith("ValueError: bad\nthing")


def test_under_journald_lines_carry_the_syslog_priority() -> None:
    assert logs.TextFormatter(journald=True).format(_record("m")).startswith("<4>ts=")
    assert logs.JsonFormatter(journald=True).format(_record("m")).startswith('<4>{"ts"')


def test_frame_log_follows_the_live_list() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    logs.frames_log.addHandler(handler)
    root_level = logging.getLogger().level
    try:
        cp1, cp2 = logs.frame_logger("CP1"), logs.frame_logger("CP2")
        logs.apply("warning", ["CP1"])
        cp1("in", "[2,\"1\",\"Heartbeat\",{}]")
        cp2("in", "[2,\"1\",\"Heartbeat\",{}]")
        logs.apply("warning", ["*"])
        cp2("out", "[3,\"1\",{}]")
        logs.apply("info", [])
        cp1("in", "[2,\"2\",\"Heartbeat\",{}]")
    finally:
        logs.frames_log.removeHandler(handler)
        logs.apply(logging.getLevelName(root_level), [])
    assert [(r.charger, r.dir) for r in seen] == [("CP1", "in"), ("CP2", "out")]
