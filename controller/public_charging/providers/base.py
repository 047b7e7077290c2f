"""The provider interface and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PaymentError(Exception):
    """The provider refused the request for good (a 4xx answer): retrying will not help."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class PaymentDeclined(PaymentError):
    """The card was declined."""


class PaymentUnavailable(Exception):
    """The provider could not be reached (network error, 5xx, 429) after the retries."""


@dataclass(frozen=True)
class Hold:
    """A card pre-authorization as the provider sees it.

    state: `pending` (waiting for the driver's card), `authorized` (held, capturable),
    `captured`, `canceled`. `decline` names the last card error while pending.
    """

    payment_id: str
    state: str
    client_secret: str | None = None
    decline: str | None = None
    amount_captured: int = 0


class PaymentProvider(Protocol):
    name: str

    async def create_hold(self, amount: int, currency: str, key: str, metadata: dict[str, str],
                          receipt_email: str | None = None) -> Hold: ...

    async def confirm(self, payment_id: str) -> Hold:
        """The hold's current state (after the driver completed payment in the browser)."""

    async def capture(self, payment_id: str, amount: int, key: str) -> int:
        """Capture `amount` (0 < amount <= hold); returns the amount captured. The rest is released."""

    async def release(self, payment_id: str, key: str) -> None:
        """Release the whole hold (nothing is charged)."""

    def client_context(self, hold: Hold) -> dict:
        """The `payment` object the driver's page needs to collect the card."""

    async def aclose(self) -> None: ...
