"""The delivery worker: sends outbox rows to the upstream, in order per charger, at least once.

- One drain task per charger with pending rows; it sends only that charger's oldest pending row,
  so a charger's events arrive in the order they were written. Chargers do not wait for each
  other (`concurrency` requests at most in flight).
- 2xx: delivered. Connection errors, timeouts, 408, 429 and 5xx: retried with exponential
  backoff and jitter up to `retry_max_s`, forever, honouring Retry-After. Any other status:
  retried `client_error_attempts` times, then parked as `failed` (the next row goes on).
- The row is marked only after the answer: a crash in between sends it again, with the same
  X-Evedge-Event-Id, so the receiver can drop the duplicate.
- Times of retries are stored as wall-clock ISO text (they survive restarts); the worker
  itself sleeps on the Trio clock, so tests drive it with `trio.testing.MockClock`.
- Nothing here can stop charging: the OCPP handlers only insert rows, and every failure of
  the worker (upstream down, database full) is logged and retried later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx
import orjson
import trio

from controller.http_clients import tls
from controller.store import outbox
from controller.timefmt import iso, parse_iso
from controller.upstream.config import UpstreamSection

if TYPE_CHECKING:
    import sqlite3

    from controller.store import Store

log = logging.getLogger("evedge.upstream")

EVENT_ID_HEADER = "X-Evedge-Event-Id"
EVENT_TYPE_HEADER = "X-Evedge-Event-Type"
ATTEMPT_HEADER = "X-Evedge-Attempt"
SIGNATURE_HEADER = "X-Evedge-Signature"
MAX_ANSWER_BYTES = 64 * 1024
POLL_S = 30.0  # a safety net: new rows normally wake the worker at once
PRUNE_EVERY_S = 600.0
ERROR_PAUSE_S = 5.0  # after the database itself failed
PAYMENT_TYPES = ("start", "stop_transaction")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - now_wall)


def backoff(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Delay after the `attempt`-th failure: initial * 2^(attempt-1), capped, "equal jitter"."""
    base = min(cap, initial * 2.0 ** min(max(attempt - 1, 0), 60))
    return base / 2 + rng.uniform(0, base / 2)


def payment_amount(answer: bytes) -> str | None:
    """The API-payment answer `{"amount": "..."}`, as text, if the body is one."""
    try:
        data = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "amount" not in data:
        return None
    amount = data["amount"]
    if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
        return None
    return str(amount)[:64]


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class Delivery:
    def __init__(self, config: UpstreamSection, store: Store, *, rng: random.Random | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.store = store
        self.rng = rng or random.Random()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._changed = trio.Event()
        self._generation = store.outbox_generation
        self._draining: set[str] = set()
        self._limiter = trio.CapacityLimiter(config.concurrency)
        self._wall0 = time.time()
        self._clock0: float | None = None
        self.outcomes = {"delivered": 0, "retry": 0, "failed": 0}  # since start, for logs and tests
        self._progress = trio.Event()

    # -- time: wall clock for what is stored, the Trio clock for sleeping ----------------------

    def wall(self) -> float:
        if self._clock0 is None:
            return time.time()
        return self._wall0 + (trio.current_time() - self._clock0)

    def now_iso(self) -> str:
        return iso(datetime.fromtimestamp(self.wall(), timezone.utc))

    def _deadline(self, row: sqlite3.Row) -> float:
        """The Trio time at which a row is due."""
        now = trio.current_time()
        if not row["next_attempt_at"]:
            return now
        wait = parse_iso(row["next_attempt_at"]).timestamp() - self.wall()
        if wait > self.config.retry_max_s + self.config.retry_after_max_s:
            return now  # stored under a clock that was far ahead (a Pi before NTP): do not wait on it
        return now + max(0.0, wait)

    # -- waking --------------------------------------------------------------------------------

    def wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def after_write(self) -> None:
        """Called by the store after each write: wake up if it queued notifications."""
        generation = self.store.outbox_generation
        if generation != self._generation:
            self._generation = generation
            self.wake()

    # -- the loops -------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        self._clock0, self._wall0 = trio.current_time(), time.time()
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s), follow_redirects=False,
            headers={"User-Agent": "evedge"}, transport=self._transport, verify=tls(),
        )
        async with client, trio.open_nursery() as nursery:
            self._client = client
            nursery.start_soon(self._prune_forever)
            task_status.started()
            while True:
                changed = self._changed
                try:
                    chargers = await self.store.read(outbox.pending_chargers)
                except Exception:
                    log.exception("cannot read the outbox; trying again in %.0f s", ERROR_PAUSE_S)
                    await trio.sleep(ERROR_PAUSE_S)
                    continue
                for charger_id in chargers:
                    if charger_id not in self._draining:
                        self._draining.add(charger_id)
                        nursery.start_soon(self._drain, charger_id)
                with trio.move_on_after(POLL_S):
                    await changed.wait()

    async def _drain(self, charger_id: str) -> None:
        """Send one charger's pending rows, oldest first, until there are none."""
        try:
            while True:
                changed = self._changed
                try:
                    row = await self.store.read(outbox.head, charger_id)
                    if row is None:
                        if changed.is_set():
                            continue  # something was queued while we looked
                        return
                    deadline = self._deadline(row)
                    if deadline > trio.current_time():
                        with trio.move_on_at(deadline):
                            await changed.wait()  # a retry by the operator, or a new row
                        continue
                    await self.attempt(row)
                except Exception:
                    log.exception("charger=%s: delivery step failed; trying again in %.0f s", charger_id, ERROR_PAUSE_S)
                    await trio.sleep(ERROR_PAUSE_S)
        finally:
            self._draining.discard(charger_id)

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("cannot prune the outbox")
            await trio.sleep(PRUNE_EVERY_S)

    async def prune(self) -> dict:
        now = self.wall()
        result = await self.store.write(
            outbox.prune,
            iso(datetime.fromtimestamp(now - self.config.delivered_retention_h * 3600, timezone.utc)),
            iso(datetime.fromtimestamp(now - self.config.failed_retention_h * 3600, timezone.utc)),
            self.config.max_rows, self.now_iso(),
        )
        if result["parked"]:
            log.warning("outbox full: parked the %d oldest pending notifications as failed", result["parked"])
        if result["removed"]:
            log.info("outbox: pruned %d old notifications", result["removed"])
        return result

    # -- one attempt -----------------------------------------------------------------------------

    def headers(self, row: sqlite3.Row, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.config.headers}
        headers[EVENT_ID_HEADER] = row["event_id"]
        headers[EVENT_TYPE_HEADER] = row["type"]
        headers[ATTEMPT_HEADER] = str(row["attempts"] + 1)
        if self.config.signing_secret:
            headers[SIGNATURE_HEADER] = sign(self.config.signing_secret, body)
        return headers

    async def attempt(self, row: sqlite3.Row) -> str:
        """Send one row once and record the outcome: delivered, retry or failed."""
        outcome = await self._attempt(row)
        self.outcomes[outcome] += 1
        self._progress.set()
        self._progress = trio.Event()
        return outcome

    async def wait_progress(self) -> None:
        """Return after the next recorded attempt."""
        await self._progress.wait()

    async def _attempt(self, row: sqlite3.Row) -> str:
        row_id, kind = row["id"], row["type"]
        url = self.config.url(kind)
        if url is None:
            await self.store.write(outbox.mark_failed, row_id, self.now_iso(),
                                   f"no URL configured for {kind} notifications", None, attempted=False)
            return "failed"
        body = row["payload"].encode()
        status: int | None = None
        answer = b""
        retry_after_header: str | None = None
        error: str | None = None
        assert self._client is not None
        async with self._limiter:
            try:
                with trio.fail_after(self.config.timeout_s):
                    async with self._client.stream("POST", url, content=body, headers=self.headers(row, body)) as resp:
                        status = resp.status_code
                        retry_after_header = resp.headers.get("Retry-After")
                        async for chunk in resp.aiter_bytes():
                            answer += chunk
                            if len(answer) > MAX_ANSWER_BYTES:
                                break
            except trio.TooSlowError:
                error = f"no answer within {self.config.timeout_s:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
        at = self.now_iso()
        if error is None and status is not None and 200 <= status < 300:
            amount = payment_amount(answer) if kind in PAYMENT_TYPES and row["transaction_id"] is not None else None
            await self.store.write(outbox.mark_delivered, row_id, status, at, amount)
            log.info("delivered %s event=%s charger=%s status=%d attempt=%d", kind, row["event_id"],
                     row["charger_id"], status, row["attempts"] + 1)
            return "delivered"
        attempt = row["attempts"] + 1
        if error is None:
            assert status is not None
            error = f"HTTP {status}"
            if answer:
                error += ": " + answer[:200].decode("utf-8", "replace")
        client_error = error is not None and status is not None and not retryable(status)
        if client_error and row["client_errors"] + 1 >= self.config.client_error_attempts:
            await self.store.write(outbox.mark_failed, row_id, at, error, status)
            log.warning("parked %s event=%s charger=%s after %d attempts: %s", kind, row["event_id"],
                        row["charger_id"], attempt, error)
            return "failed"
        delay = backoff(attempt, self.config.retry_initial_s, self.config.retry_max_s, self.rng)
        retry_after = parse_retry_after(retry_after_header, self.wall())
        if retry_after is not None:
            delay = min(retry_after, self.config.retry_after_max_s)
        # stored to the millisecond, rounded up: never earlier than the upstream asked
        next_at = iso(datetime.fromtimestamp(self.wall() + delay + 0.001, timezone.utc))
        await self.store.write(outbox.mark_retry, row_id, at, next_at, error, status, client_error)
        log.warning("%s event=%s charger=%s attempt %d failed (%s); next in %.1f s", kind, row["event_id"],
                    row["charger_id"], attempt, error, delay)
        return "retry"

    # -- the operator's view: the outbox is read and replayed through here only -------------------

    async def notifications(self, status: str | None, charger_id: str | None, event_type: str | None,
                            limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
        """One page of notifications (pending oldest first, the others newest first) and how many
        match in all."""
        return await self.store.read(outbox.page, status, charger_id, event_type, limit, offset)

    async def notification(self, row_id: int) -> sqlite3.Row | None:
        return await self.store.read(outbox.get, row_id)

    async def replay(self, row_id: int) -> sqlite3.Row | None:
        """Send a notification again now (a failed one, a delivered one as a replay, or one waiting
        for its next attempt); None if there is no such row."""
        row = await self.store.write(outbox.retry, row_id)
        if row is not None:
            self.wake()
        return row

    async def queue(self) -> dict:
        stats = await self.store.read(outbox.stats)
        oldest = stats.pop("oldest_pending_id")
        age = round(self.store.outbox_queued.age(oldest), 3) if oldest else None
        return {**stats, "oldestPendingAgeSeconds": age}
