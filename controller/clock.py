"""Whether the wall clock can be trusted, on a Pi that may have none of its own.

A Raspberry Pi has no real-time clock: after a power cut it boots with an old time (1970, or the
time fake-hwclock saved), and NTP corrects it only once the uplink is back, which after a power
cut may be late. Meanwhile the controller would stamp the books with that time and tell every
charger to set its clock to it (`currentTime` in the BootNotification and Heartbeat answers).

Two witnesses say the clock is wrong:
- the books: a record we stamped ourselves (a transaction's update, an upstream event, a
  heartbeat) later than the clock now means the clock went back. Then `currentTime` is the
  newest trustworthy time instead: that record's time plus the time run since (monotonic), a
  lower bound of the true time. OCPP requires `currentTime` in both answers (1.6 and 2.0.1), so
  it cannot be left out.
- the kernel: its NTP synchronisation state (adjtimex; under the shipped unit, whose
  ProtectClock= forbids that call, `timedatectl`). Unsynchronised for longer than
  KERNEL_GRACE_S of running is reported (NTP's first synchronisation takes seconds to minutes),
  but the time is not replaced: the kernel cannot say how wrong it is. A synchronised kernel
  overrides the books: records stamped by a clock that was once ahead (2099) must not make the
  corrected clock look wrong forever.

`judge` takes everything as inputs, so each case is testable without touching the machine's clock.
Durations, backoffs, rate limits and timeouts never use the wall clock anyway (trio's clock and
time.monotonic are monotonic).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import trio

from controller.timefmt import iso, parse_iso, utcnow

log = logging.getLogger("evedge.clock")
TOLERANCE_S = 60.0  # a record this much ahead of the clock is the clock gone back, not jitter
KERNEL_GRACE_S = 600.0  # running this long and still unsynchronised: reported
CHECK_EVERY_S = 60.0
_TIME_ERROR = 5  # adjtimex's answer while the kernel clock is not synchronised (STA_UNSYNC)


@dataclass(frozen=True)
class Verdict:
    trusted: bool
    """False: the clock is behind the books (`estimate` is the time to tell chargers)."""
    synchronized: bool | None
    """The kernel's NTP state; None when it cannot be read."""
    reason: str | None = None
    """Why the clock is suspect (None: it is not)."""
    newest_record: datetime | None = None


def judge(now: datetime, newest_record: datetime | None, kernel_synchronized: bool | None,
          running_s: float) -> Verdict:
    """The verdict on the wall clock `now`, given the newest record the books hold, the kernel's
    synchronisation state and how long the controller has run."""
    if kernel_synchronized is not True and newest_record is not None \
            and newest_record > now + timedelta(seconds=TOLERANCE_S):
        return Verdict(False, kernel_synchronized, f"the clock ({iso(now)}) is behind the newest record in the"
                       f" books ({iso(newest_record)}): it went back (no real-time clock, NTP not reached yet?)",
                       newest_record)
    if kernel_synchronized is False and running_s >= KERNEL_GRACE_S:
        return Verdict(True, False, "the system clock is not synchronised (NTP): times may drift or be wrong",
                       newest_record)
    return Verdict(True, kernel_synchronized, None, newest_record)


def _adjtimex() -> bool | None:
    """The kernel's own state: read-only adjtimex (modes 0); None if the call is refused."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != _TIME_ERROR


async def kernel_synchronized() -> bool | None:
    """True/False as the kernel says, else as systemd's timedatectl says, else None (unknown)."""
    state = _adjtimex()
    if state is not None or shutil.which("timedatectl") is None:
        return state
    try:
        with trio.move_on_after(5):
            result = await trio.run_process(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                            capture_stdout=True, capture_stderr=True, check=False,
                                            env={**os.environ, "SYSTEMD_COLORS": "0"})
            answer = result.stdout.decode().strip()
            return {"yes": True, "no": False}.get(answer) if result.returncode == 0 else None
    except OSError:
        return None
    return None


class SiteClock:
    """The site's view of its clock: checked at start and every CHECK_EVERY_S; what to tell
    chargers, and what /healthz says."""

    def __init__(self, newest_record: Callable[[], Awaitable[str | None]],
                 kernel: Callable[[], Awaitable[bool | None]] = kernel_synchronized) -> None:
        self.newest_record = newest_record
        self.kernel = kernel
        self.verdict = Verdict(True, None)
        self._started = time.monotonic()
        self._anchor: tuple[datetime, float] | None = None  # (trustworthy time, monotonic then)

    async def check(self) -> Verdict:
        text = await self.newest_record()
        verdict = judge(utcnow(), parse_iso(text) if text else None, await self.kernel(),
                        time.monotonic() - self._started)
        if verdict.reason != self.verdict.reason:
            if verdict.reason is not None:
                log.warning("clock: %s", verdict.reason)
            else:
                log.info("clock: trusted again (%s)", "synchronised" if verdict.synchronized else "not behind the books")
        if not verdict.trusted and verdict.newest_record is not None:
            if self._anchor is None or verdict.newest_record > self.estimate():
                self._anchor = (verdict.newest_record, time.monotonic())
        else:
            self._anchor = None
        self.verdict = verdict
        return verdict

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        await self.check()
        task_status.started()
        while True:
            await trio.sleep(CHECK_EVERY_S)
            try:
                await self.check()
            except Exception:  # a database that cannot be read now: /healthz says so elsewhere
                log.exception("clock check failed")

    def estimate(self) -> datetime:
        """The newest trustworthy time: the wall clock, or while it is behind the books, the
        newest record's time plus the (monotonic) time run since it was found."""
        if self._anchor is None:
            return utcnow()
        moment, at = self._anchor
        return moment + timedelta(seconds=time.monotonic() - at)

    def for_chargers(self, now_text: str) -> str:
        """`currentTime` for a charger: `now_text` (the wall clock's time just stamped) while the
        clock is trusted, else the estimate."""
        return now_text if self._anchor is None else iso(self.estimate())

    def health(self) -> dict:
        verdict = self.verdict
        body: dict = {"status": "ok" if verdict.reason is None else "degraded", "synchronized": verdict.synchronized}
        if verdict.reason is not None:
            body["error"] = verdict.reason
        if not verdict.trusted:
            body["toldChargers"] = iso(self.estimate())
        return body
