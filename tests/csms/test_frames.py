"""OCPP-J frame decoding, payload validation (with 1.6 error codes) and compact encoding."""

from __future__ import annotations

import pytest

from controller.csms import frames
from controller.csms.v16 import schemas as schemas16
from controller.csms.frames import Call, CallError, CallResult, FrameError, OcppError


def test_decode_call_result_error():
    assert frames.decode('[2,"a","Heartbeat",{}]') == Call("a", "Heartbeat", {})
    assert frames.decode(b'[3,"b",{"currentTime":"x"}]') == CallResult("b", {"currentTime": "x"})
    assert frames.decode('[4,"c","NotImplemented","nope",{"k":1}]') == CallError("c", "NotImplemented", "nope", {"k": 1})
    assert frames.decode('[4,"c","GenericError","no details"]') == CallError("c", "GenericError", "no details", {})


@pytest.mark.parametrize(
    ("text", "code", "unique_id"),
    [
        ("not json", "FormationViolation", None),
        ('{"a": 1}', "FormationViolation", None),
        ("[]", "FormationViolation", None),
        ("[2]", "FormationViolation", None),
        ('[2, 17, "Heartbeat", {}]', "FormationViolation", None),
        ('[2, "' + "x" * 37 + '", "Heartbeat", {}]', "FormationViolation", "x" * 37),
        ('[2, "a", "Heartbeat"]', "FormationViolation", "a"),
        ('[2, "a", 5, {}]', "FormationViolation", "a"),
        ('[3, "a"]', "FormationViolation", "a"),
        ('[9, "a", "Heartbeat", {}]', "ProtocolError", "a"),
    ],
)
def test_decode_errors(text, code, unique_id):
    with pytest.raises(FrameError) as info:
        frames.decode(text)
    assert info.value.code == code
    assert info.value.unique_id == unique_id


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("BootNotification", {"chargePointVendor": "v"}, "ProtocolError"),  # required key missing
        ("BootNotification", {"chargePointVendor": "v", "chargePointModel": 5}, "TypeConstraintViolation"),
        ("BootNotification", {"chargePointVendor": "v" * 21, "chargePointModel": "m"}, "TypeConstraintViolation"),
        ("BootNotification", {"chargePointVendor": "v", "chargePointModel": "m", "x": 1}, "FormationViolation"),
        ("Heartbeat", [], "FormationViolation"),
        ("StatusNotification", {"connectorId": 1, "status": "Dancing", "errorCode": "NoError"},
         "PropertyConstraintViolation"),
        ("StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": "ten", "timestamp": "2026-01-01T00:00:00Z"},
         "TypeConstraintViolation"),
    ],
)
def test_validate_maps_schema_errors_to_ocpp16_codes(action, payload, code):
    with pytest.raises(OcppError) as info:
        schemas16.validate(frames.CALL, action, payload)
    assert info.value.code == code


def test_validate_accepts_valid_payloads():
    schemas16.validate(frames.CALL, "Heartbeat", {})
    schemas16.validate(frames.CALL, "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"})
    schemas16.validate(frames.CALLRESULT, "Heartbeat", {"currentTime": "2026-02-06T12:00:00.000Z"})
    # multipleOf 0.1 needs decimals: 0.3 is not a float multiple of 0.1, yet valid
    profile = {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.3}]},
    }
    schemas16.validate(frames.CALL, "RemoteStartTransaction", {"idTag": "A", "chargingProfile": profile})
    schemas16.validate(frames.CALL, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})


def test_encoding_is_compact_and_ordered():
    assert frames.encode_call("1", "Reset", {"type": "Soft"}) == '[2,"1","Reset",{"type":"Soft"}]'
    assert frames.encode_result("2", {"b": 1, "a": 2}) == '[3,"2",{"b":1,"a":2}]'
    assert frames.encode_error("3", "NotImplemented", "x") == '[4,"3","NotImplemented","x",{}]'
    assert frames.encode_error("3", "GenericError", "x", {"d": 1}) == '[4,"3","GenericError","x",{"d":1}]'


def test_action_sets_are_ocpp16_and_disjoint_except_data_transfer():
    assert schemas16.CHARGER_ACTIONS & schemas16.CENTRAL_ACTIONS == {"DataTransfer"}
    assert len(schemas16.CENTRAL_ACTIONS) == 19
    assert len(schemas16.CHARGER_ACTIONS) == 10


from hypothesis import given, settings
from hypothesis import strategies as st

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _json.map(lambda v: __import__("json").dumps(v)),
                 st.tuples(st.sampled_from([2, 3, 4, 5]), st.text(max_size=40), _json, _json).map(
                     lambda t: __import__("json").dumps(list(t)))))
def test_decode_never_fails_with_anything_but_a_frame_error(text):
    try:
        frame = frames.decode(text)
    except FrameError as err:
        assert err.code in ("FormationViolation", "ProtocolError")
        return
    assert isinstance(frame, (Call, CallResult, CallError))
    assert len(frame.unique_id) <= frames.MAX_UNIQUE_ID
