"""Payment providers: one small interface (create a hold, confirm, capture up to the hold, release).

`stripe` talks to Stripe's REST API (PaymentIntents with manual capture); `none` is free
charging for private sites. Every mutating call carries an idempotency key derived from the
session, so repeating a call after a crash or a lost answer never charges twice.
"""

from __future__ import annotations

from controller.config import PublicChargingSection
from controller.public_charging.providers.base import (
    Hold, PaymentDeclined, PaymentError, PaymentProvider, PaymentUnavailable,
)
from controller.public_charging.providers.free import NoPayment
from controller.public_charging.providers.stripe import StripeProvider


def make_provider(section: PublicChargingSection) -> PaymentProvider:
    if section.payment_provider == "stripe":
        return StripeProvider(section.stripe_api_base, section.stripe_secret_key,
                              section.stripe_publishable_key, section.stripe_timeout_s)
    return NoPayment()


__all__ = ["Hold", "PaymentDeclined", "PaymentError", "PaymentProvider", "PaymentUnavailable", "make_provider"]
