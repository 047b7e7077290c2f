"""Public (ad-hoc) charging: pay-by-phone sessions with pricing and card pre-authorization.

sessions.py (lifecycle), money.py (integer minor-unit arithmetic), providers/ (stripe, none),
api.py (routes; `register(app, site)`), static/charge.html (the driver page at /charge/{code}).
"""
