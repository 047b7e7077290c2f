"""Local-controller mode: the site behind an OCPP central system (docs/local-controller.md).

The chargers talk to the site; the site answers them at once from its own books (local-first)
and talks to the central system for each of them over a connection of its own (`link.py`).
What a charger says reaches the central system through a durable per-charger queue
(`forwarder.py`, rows in store/forwarding.py), replayed in order with the original timestamps
after an outage; the central system's calls reach the charger, or the site's own books for remote
starts, stops and charging limits (`commands.py`; the limits kept on disk, `caps.py`). Each
charger is forwarded in the OCPP version it speaks; what differs is one record per version
(`versions.py`: `ocpp16.py`, where the central system's transaction ids are mapped to ours by
`transaction_ids.py`, and `ocpp201.py`, where the station names its transactions for both).

The protocol adapters hand every call of a charger to `Forwarder.forward` (csms/adapter.py
`Forward`): the one seam between the chargers' side and this package.
"""
