"""Public (ad-hoc) charging: pay-by-phone sessions with pricing and card pre-authorization.

sessions.py (lifecycle), money.py (integer minor-unit arithmetic), providers/ (stripe, none),
api.py (routes and their OpenAPI section; `register(app, public_charging)`), static/charge.html (the driver page at /charge/{code}).
"""
