"""OCPP 1.6 actions and payload validation (the schemas the `ocpp` library ships), with 1.6's
error codes (`FormationViolation`, not 2.0.1's `FormatViolation`)."""

from __future__ import annotations

from jsonschema.exceptions import ValidationError as SchemaError

from controller.csms.frames import CALL, CALLRESULT
from controller.csms.rpc import Dialect
from controller.csms.schemas import SchemaValidator

# Actions a charger may send us, and actions we may send a charger (OCPP 1.6 core and profiles).
CHARGER_ACTIONS = frozenset({
    "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
    "StatusNotification", "StopTransaction",
})
CENTRAL_ACTIONS = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
    "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
    "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
    "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
    "UnlockConnector", "UpdateFirmware",
})
# Schemas with `multipleOf: 0.1` that only validate correctly with Decimal numbers.
DECIMAL_SCHEMAS = frozenset({(CALL, "SetChargingProfile"), (CALL, "RemoteStartTransaction"),
                             (CALLRESULT, "GetCompositeSchedule")})


def code_for(err: SchemaError) -> str:
    if err.validator == "required":
        return "ProtocolError"
    if err.validator == "type":
        return "TypeConstraintViolation" if err.path else "FormationViolation"
    if err.validator == "maxLength":
        return "TypeConstraintViolation"
    if err.validator == "additionalProperties":
        return "FormationViolation"
    if err.validator in ("enum", "minimum", "maximum", "multipleOf", "minLength", "format"):
        return "PropertyConstraintViolation"
    if err.validator in ("minItems", "maxItems", "uniqueItems"):
        return "OccurenceConstraintViolation"
    return "FormationViolation"


VALIDATOR = SchemaValidator("1.6", code_for, DECIMAL_SCHEMAS)
validate = VALIDATOR.validate


DIALECT = Dialect(charger_actions=CHARGER_ACTIONS, known_actions=CHARGER_ACTIONS | CENTRAL_ACTIONS,
                  validate=VALIDATOR.validate, frame_error_code=lambda code: code)  # framing speaks 1.6's words
