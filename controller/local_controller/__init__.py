"""Local-controller mode: the site behind an OCPP 1.6J central system (docs/local-controller.md).

The chargers talk to the site; the site answers them at once from its own books (local-first)
and talks to the central system for each of them over a connection of its own (`link.py`).
What a charger says reaches the central system through a durable per-charger queue
(`forwarder.py`, rows in store/forwarding.py), replayed in order with the original timestamps
after an outage; the central system's calls reach the charger, or the site's own books for remote
starts, stops and charging limits (`commands.py`). Transaction ids are the site's; the central
system's ids are mapped to ours (`transaction_ids.py`).

The protocol adapters hand every call of a 1.6 charger to `Forwarder.forward` (csms/adapter.py
`Forward`): the one seam between the chargers' side and this package.
"""
