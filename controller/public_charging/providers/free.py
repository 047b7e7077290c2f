"""`none`: free charging for private sites. Authorizes at once and never charges."""

from __future__ import annotations

from controller.public_charging.providers.base import Hold


class NoPayment:
    name = "none"

    async def create_hold(self, amount: int, currency: str, key: str, metadata: dict[str, str],
                          receipt_email: str | None = None) -> Hold:
        return Hold(f"none_{key}", "authorized")

    async def confirm(self, payment_id: str) -> Hold:
        return Hold(payment_id, "authorized")

    async def capture(self, payment_id: str, amount: int, key: str) -> int:
        return 0

    async def release(self, payment_id: str, key: str) -> None:
        return None

    def client_context(self, hold: Hold) -> dict:
        return {"provider": "none"}

    async def aclose(self) -> None:
        return None
