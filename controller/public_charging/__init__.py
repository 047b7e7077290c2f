"""Public (ad-hoc) charging: pay-by-phone sessions with pricing and card pre-authorization.

sessions.py (`PublicCharging`, what the site builds), statuses.py (the session state machine's
table), lifecycle.py (timers, the worker, start/stop/cancel at the charger), payments.py (holds,
capture, settlement, retries), views.py (sessions and chargers as the API shows them), tokens.py
(driver tokens, id tags), money.py (integer minor-unit arithmetic), providers/ (stripe, none),
api.py (routes and their OpenAPI section; `register(app, public_charging)`), static/charge.html (the driver page at /charge/{code}).
"""
