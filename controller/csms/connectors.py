"""A connector id from a charger's call, checked before anything is stored under it.

The domain decides which ids a charger has (`ChargerState.accepts_connector`); this words the
refusal as OCPP does (1.6 and 2.0.1 share the code), and the RPC session logs the CALLERROR.
Unchecked, 20,000 made-up ids from one 2-connector charger became 20,000 connector rows.
"""

from __future__ import annotations

from controller.chargers import ChargerState
from controller.csms.frames import OcppError


def checked_connector(state: ChargerState, connector_id: int, charging: bool = False) -> int:
    """`connector_id` if the charger has it (`charging`: for a charge), else OcppError."""
    if state.accepts_connector(connector_id, charging):
        return connector_id
    ids = state.connector_ids(charging)
    raise OcppError("PropertyConstraintViolation", f"connector {connector_id} is not one of charger {state.id}'s"
                    f" ({ids.start}..{ids.stop - 1}{' for a charge' if charging else ''})")
