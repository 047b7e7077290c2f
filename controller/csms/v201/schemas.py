"""OCPP 2.0.1 actions and payload validation (the schemas the `ocpp` library ships), with 2.0.1's
error codes (`FormatViolation`, `OccurrenceConstraintViolation`, `MessageTypeNotSupported`)."""

from __future__ import annotations

from jsonschema.exceptions import ValidationError as SchemaError

from controller.csms.rpc import Dialect
from controller.csms.schemas import SchemaValidator

VERSION = "2.0.1"

# What a charging station sends a central system (OCPP 2.0.1 part 2, the Messages chapter).
CHARGER_ACTIONS = frozenset({
    "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer", "FirmwareStatusNotification",
    "Get15118EVCertificate", "GetCertificateStatus", "Heartbeat", "LogStatusNotification", "MeterValues",
    "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
    "PublishFirmwareStatusNotification", "ReportChargingProfiles", "ReservationStatusUpdate",
    "SecurityEventNotification", "SignCertificate", "StatusNotification", "TransactionEvent",
})
# What a central system sends a charging station.
CENTRAL_ACTIONS = frozenset({
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache", "ClearChargingProfile",
    "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated", "CustomerInformation", "DataTransfer",
    "DeleteCertificate", "GetBaseReport", "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetReport",
    "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware", "RequestStartTransaction",
    "RequestStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "SetDisplayMessage",
    "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring", "SetVariables",
    "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
})

_CODES = {
    "required": "OccurrenceConstraintViolation",
    "minItems": "OccurrenceConstraintViolation",
    "maxItems": "OccurrenceConstraintViolation",
    "uniqueItems": "OccurrenceConstraintViolation",
    "additionalProperties": "FormatViolation",
    "maxLength": "TypeConstraintViolation",
    "enum": "PropertyConstraintViolation",
    "minimum": "PropertyConstraintViolation",
    "maximum": "PropertyConstraintViolation",
    "multipleOf": "PropertyConstraintViolation",
    "minLength": "PropertyConstraintViolation",
    "format": "PropertyConstraintViolation",
}


def code_for(err: SchemaError) -> str:
    if err.validator == "type":
        return "TypeConstraintViolation" if err.path else "FormatViolation"
    return _CODES.get(str(err.validator), "FormatViolation")


VALIDATOR = SchemaValidator(VERSION, code_for)
validate = VALIDATOR.validate


def frame_error_code(code: str) -> str:
    """An unknown message type has its own code in 2.0.1; any other broken frame is no valid RPC
    request at all."""
    return "MessageTypeNotSupported" if code == "ProtocolError" else "RpcFrameworkError"


DIALECT = Dialect(charger_actions=CHARGER_ACTIONS, known_actions=CHARGER_ACTIONS | CENTRAL_ACTIONS,
                  validate=VALIDATOR.validate, frame_error_code=frame_error_code)
