"""The money side of a public session: the card hold, its confirmation, the capture, the release.

Provider calls happen after the session's state is committed and carry idempotency keys derived
from the session's uid (`evedge-<uid>-hold`, `-capture`, `-release`), so a step repeated after a
crash or a lost answer never charges twice. A provider that cannot be reached is tried again with
backoff (the worker in lifecycle.py runs the steps and waits as they say); after CAPTURE_ATTEMPTS
failed captures a person has to look, the session is `requires_review`.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Literal

from controller.errors import ProviderUnavailable
from controller.public_charging import money
from controller.public_charging.providers import Hold, PaymentError, PaymentProvider, PaymentUnavailable
from controller.public_charging.statuses import Move, may, sources
from controller.store import Store
from controller.store import public_sessions as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.public_charging")

CAPTURE_ATTEMPTS = 5
RETRY_BACKOFF_S = (5.0, 15.0, 60.0, 300.0)
PROVIDER_UNAVAILABLE = "the payment provider is not available; try again"


def backoff_s(failures: int) -> float:
    """How long to wait before trying again after `failures` + 1 failed tries."""
    return RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S) - 1)]


def idempotency_key(row: sqlite3.Row, step: Literal["hold", "capture", "release"]) -> str:
    """The same key for every try of one step of one session: the provider does it once."""
    return f"evedge-{row['uid']}-{step}"


def hold_to_release(row: sqlite3.Row) -> bool:
    """A session that ended without a capture and still holds money on the driver's card."""
    return row["status"] in q.RELEASE and not row["hold_released"] and bool(row["payment_id"])


class Payments:
    """The provider calls of public sessions and the moves they cause (through `move`)."""

    def __init__(self, store: Store, provider: PaymentProvider, move: Move) -> None:
        self.store = store
        self.provider = provider
        self.move = move

    async def open_hold(self, row: sqlite3.Row) -> tuple[sqlite3.Row, dict]:
        """Ask the provider to hold the session's amount on the driver's card.

        Returns the session and the `payment` context the driver's page pays with. A provider
        that fails ends the session (`failed`) and raises ProviderUnavailable: the driver starts
        over rather than keep a session no one can pay.
        """
        metadata = {"evedge_session": row["uid"], "charger": row["charger_id"], "connector": str(row["connector_id"])}
        try:
            hold = await self.provider.create_hold(row["amount_authorized"], row["currency"],
                                                   idempotency_key(row, "hold"), metadata, row["driver_email"])
        except (PaymentError, PaymentUnavailable) as exc:
            await self.move(row["id"], "payment_failed", failure_reason="payment_provider_error")
            log.error("public session %s: could not create the hold: %s", row["id"], exc)
            raise ProviderUnavailable(PROVIDER_UNAVAILABLE, code="PaymentProviderError") from exc
        row = await self.store.write(q.update, row["id"], None, payment_id=hold.payment_id,
                                     client_secret=hold.client_secret)
        if hold.state == "authorized":  # provider `none`: nothing to pay, start at once
            row = await self._paid(row) or row
        return row, self.provider.client_context(hold)

    def context(self, row: sqlite3.Row) -> dict | None:
        """The `payment` context while the driver still has to pay, else None."""
        if not may(row["status"], "paid") or row["payment_id"] is None:
            return None
        return self.provider.client_context(Hold(row["payment_id"], "pending", row["client_secret"]))

    async def confirm(self, row: sqlite3.Row) -> sqlite3.Row:
        """Reconcile with the provider after the driver paid in the browser (no webhooks needed):
        authorized, canceled, or still pending with the card's decline code for the page."""
        if not may(row["status"], "paid") or not row["payment_id"]:
            return row
        try:
            hold = await self.provider.confirm(row["payment_id"])
        except (PaymentError, PaymentUnavailable) as exc:
            log.warning("public session %s: confirm failed: %s", row["id"], exc)
            raise ProviderUnavailable(PROVIDER_UNAVAILABLE, code="PaymentProviderError") from exc
        if hold.state == "authorized":
            return await self._paid(row) or await self.store.read(q.get, row["id"])
        if hold.state == "canceled":
            return await self.move(row["id"], "payment_failed", failure_reason="payment_canceled",
                                   hold_released=1) or row
        if hold.decline:  # the driver may try another card until the session expires
            return await self.store.write(q.update, row["id"], sources("paid"), failure_reason=hold.decline) or row
        return row

    async def _paid(self, row: sqlite3.Row) -> sqlite3.Row | None:
        return await self.move(row["id"], "paid", authorized_at=now_iso(), failure_reason=None)

    async def settle(self, row: sqlite3.Row) -> float | None:
        """Capture what the charge cost, or give the hold back when it cost nothing.

        Returns the seconds to wait before trying again while the provider cannot be reached,
        else None. The provider's own failure (a refusal) is final: `capture_failed`.
        """
        sid = row["id"]
        amount = row["cost_amount"] or 0
        if amount <= 0:
            await self.provider.release(row["payment_id"], idempotency_key(row, "release"))
            await self.move(sid, "nothing_delivered", amount_captured=0, tax_amount=0, hold_released=1)
            return None
        try:
            captured = await self.provider.capture(row["payment_id"], amount, idempotency_key(row, "capture"))
        except PaymentUnavailable as exc:
            attempts = row["capture_attempts"] + 1
            log.warning("public session %s: capture attempt %d failed: %s", sid, attempts, exc)
            if attempts >= CAPTURE_ATTEMPTS:
                await self.move(sid, "provider_unreachable", capture_attempts=attempts,
                                failure_reason="provider_unreachable")
                return None
            await self.store.write(q.update, sid, sources("capture"), capture_attempts=attempts)
            return backoff_s(attempts - 1)
        except PaymentError as exc:
            await self.move(sid, "capture_refused", failure_reason=exc.code)
            log.warning("public session %s: capture refused: %s", sid, exc)
            return None
        await self.move(sid, "capture", amount_captured=captured, hold_released=1, captured_at=now_iso(),
                        tax_amount=money.tax_included(captured, row["tax_rate"]))
        log.info("public session %s: captured %d %s", sid, captured, row["currency"])
        return None

    async def release(self, row: sqlite3.Row) -> float | None:
        """Give the hold of a session that ended without a charge back; the seconds to wait
        before trying again while the provider cannot be reached, else None."""
        try:
            await self.provider.release(row["payment_id"], idempotency_key(row, "release"))
        except PaymentUnavailable:
            return backoff_s(1)
        except PaymentError as exc:  # nothing more to try: an operator sees it in the log
            log.error("public session %s: the provider refused to release the hold: %s", row["id"], exc)
        await self.store.write(q.update, row["id"], None, hold_released=1)
        return None

    async def aclose(self) -> None:
        await self.provider.aclose()
