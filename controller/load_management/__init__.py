"""Site load management: keep every circuit under its fuse, share it fairly, fail safe.

- `config`: the `[[circuits]]` tables, the chargers' load keys and the `[load_management]` timing.
- `allocation`: the pure function from measurements and demands to per-connector amps, with the
  reason for each share. No I/O, no clock.
- `manager`: the loop that reads the meters, allocates and sends the limits through each charger's
  `ChargerLink`, with the fail-safes (docs/load-management.md).
"""
