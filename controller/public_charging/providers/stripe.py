"""Stripe PaymentIntents with manual capture, over Stripe's REST API (httpx under Trio).

Requests are form-encoded like Stripe's own clients. Every POST carries an Idempotency-Key, and
transport errors, 5xx and 429 answers are retried a few times with the same key, so a retry
never creates a second hold or a second capture.
"""

from __future__ import annotations

import logging

import httpx
import trio

from controller.http_clients import tls
from controller.public_charging.providers.base import Hold, PaymentDeclined, PaymentError, PaymentUnavailable

log = logging.getLogger("evedge.public_charging.stripe")
ATTEMPTS = 3
BACKOFF_S = (0.2, 1.0)

_STATES = {
    "requires_payment_method": "pending",
    "requires_confirmation": "pending",
    "requires_action": "pending",
    "processing": "pending",
    "requires_capture": "authorized",
    "succeeded": "captured",
    "canceled": "canceled",
}


def _hold(body: dict) -> Hold:
    error = body.get("last_payment_error") or {}
    return Hold(
        payment_id=body["id"],
        state=_STATES.get(body.get("status", ""), "pending"),
        client_secret=body.get("client_secret"),
        decline=(error.get("decline_code") or error.get("code")) if error else None,
        amount_captured=int(body.get("amount_received") or 0),
    )


class StripeProvider:
    name = "stripe"

    def __init__(self, api_base: str, secret_key: str, publishable_key: str, timeout_s: float = 10.0) -> None:
        self.publishable_key = publishable_key
        self.backoff_s = BACKOFF_S  # waits between the attempts of one call
        self._client = httpx.AsyncClient(
            base_url=api_base.rstrip("/"), timeout=timeout_s,
            headers={"Authorization": f"Bearer {secret_key}", "Stripe-Version": "2024-06-20"}, verify=tls(),
        )

    async def _request(self, method: str, path: str, data: dict | None = None, key: str | None = None) -> dict:
        headers = {"Idempotency-Key": key} if key else {}
        last_problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await trio.sleep(self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)])
            try:
                response = await self._client.request(method, path, data=data, headers=headers)
            except httpx.TransportError as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
                log.warning("stripe %s %s failed (attempt %d): %s", method, path, attempt + 1, last_problem)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last_problem = f"HTTP {response.status_code}"
                log.warning("stripe %s %s answered %d (attempt %d)", method, path, response.status_code, attempt + 1)
                continue
            try:
                body = response.json()
            except ValueError:
                raise PaymentUnavailable(f"stripe answered {response.status_code} without JSON") from None
            if response.status_code >= 400:
                error = body.get("error") or {}
                code = error.get("decline_code") or error.get("code") or error.get("type") or "stripe_error"
                cls = PaymentDeclined if error.get("type") == "card_error" else PaymentError
                raise cls(code, error.get("message", ""))
            return body
        raise PaymentUnavailable(last_problem or "stripe unreachable")

    async def create_hold(self, amount: int, currency: str, key: str, metadata: dict[str, str],
                          receipt_email: str | None = None) -> Hold:
        data = {"amount": str(amount), "currency": currency.lower(), "capture_method": "manual",
                "payment_method_types[]": "card"}
        if receipt_email:  # Stripe e-mails the driver a receipt once the charge is captured
            data["receipt_email"] = receipt_email
        data.update({f"metadata[{k}]": v for k, v in metadata.items()})
        return _hold(await self._request("POST", "/v1/payment_intents", data, key))

    async def confirm(self, payment_id: str) -> Hold:
        return _hold(await self._request("GET", f"/v1/payment_intents/{payment_id}"))

    async def capture(self, payment_id: str, amount: int, key: str) -> int:
        try:
            body = await self._request("POST", f"/v1/payment_intents/{payment_id}/capture",
                                       {"amount_to_capture": str(amount)}, key)
        except PaymentError:
            # Captured already (an answer lost before a crash, idempotency key expired)?
            hold = await self.confirm(payment_id)
            if hold.state == "captured":
                return hold.amount_captured
            raise
        return int(body.get("amount_received") or amount)

    async def release(self, payment_id: str, key: str) -> None:
        try:
            await self._request("POST", f"/v1/payment_intents/{payment_id}/cancel", {}, key)
        except PaymentError:
            hold = await self.confirm(payment_id)
            if hold.state != "canceled":
                raise

    def client_context(self, hold: Hold) -> dict:
        return {"provider": "stripe", "payment_intent_id": hold.payment_id,
                "client_secret": hold.client_secret, "publishable_key": self.publishable_key}

    async def aclose(self) -> None:
        await self._client.aclose()
