"""How meters and card readers look in the REST API: the drivers' states rendered by
controller/api/hardware.py (camelCase keys, ISO 8601 UTC timestamps, lists for phases)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from controller.api import models
from controller.api.hardware import meter_to_api, reader_to_api
from drivers import MeterState, ReaderState

ISO_MS_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _validate(body: dict, schema: str) -> None:
    """Exactly the model the OpenAPI document publishes: every field, nothing else."""
    model = getattr(models, schema)
    assert set(body) == set(model.model_fields), set(body) ^ set(model.model_fields)
    model.model_validate(body)


def test_meter_shape() -> None:
    """A custom-map connector meter on one phase, as its poll left it."""
    state = MeterState(
        id="cp1", model="custom", bus="gw", role="connector", charger="CP-1", connector=1, online=True,
        energy_import_wh=5000.0, power_w=-1500.5, voltage_v=(229.9,), updated_at=datetime.now(timezone.utc),
    )
    api = meter_to_api(state)
    assert api == {
        "id": "cp1",
        "model": "custom",
        "bus": "gw",
        "role": "connector",
        "charger": "CP-1",
        "connector": 1,
        "online": True,
        "lastError": None,
        "energyImportWh": 5000.0,
        "energyExportWh": None,
        "powerW": -1500.5,
        "voltageV": [229.9],
        "currentA": None,
        "phasePowerW": None,
        "updatedAt": api["updatedAt"],
    }
    assert re.fullmatch(ISO_MS_Z, api["updatedAt"])
    _validate(api, "Meter")


def test_meter_never_polled_and_three_phases() -> None:
    never = meter_to_api(MeterState(id="grid", model="sdm630", bus="rs485", role="site"))
    assert never["updatedAt"] is None and never["online"] is False and never["voltageV"] is None
    _validate(never, "Meter")
    polled = MeterState(id="grid", model="sdm630", bus="rs485", role="site", current_a=(10.5, 10.25, None),
                        updated_at=datetime(2026, 2, 6, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))))
    api = meter_to_api(polled)
    assert api["currentA"] == [10.5, 10.25, None] and api["updatedAt"] == "2026-02-06T12:00:00.123Z"


def test_reader_shape_with_its_last_tap_result() -> None:
    state = ReaderState(id="bay-1", kind="rdm6300", charger="CP-1", connector=2, connected=True,
                        last_tap_at=datetime(2026, 2, 6, 12, 0, 1, tzinfo=timezone.utc), last_id_tag="0A00B1C2D3",
                        taps=2, bad_frames=1, noise_bytes=25, reconnects=3)
    result = {"result": "Started", "message": "started", "idTag": "0A00B1C2D3", "idTagStatus": "Accepted",
              "transactionId": 7, "at": "2026-02-06T12:00:01.000Z"}
    api = reader_to_api(state, result)
    assert api == {
        "id": "bay-1",
        "kind": "rdm6300",
        "charger": "CP-1",
        "connector": 2,
        "connected": True,
        "lastError": None,
        "lastTapAt": "2026-02-06T12:00:01.000Z",
        "lastIdTag": "0A00B1C2D3",
        "taps": 2,
        "badFrames": 1,
        "noiseBytes": 25,
        "reconnects": 3,
        "lastTapResult": result,
    }
    _validate(api, "Reader")
    idle = reader_to_api(ReaderState(id="door", kind="modbus"), None)
    assert idle["lastTapAt"] is None and idle["lastTapResult"] is None and idle["taps"] == 0
    _validate(idle, "Reader")
