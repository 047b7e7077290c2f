"""Each renderer gives exactly its model's shape (controller/api/models.py), the shape the OpenAPI
document publishes: every field, no other key, values the model accepts.

The renderers build plain dicts (fast); this ties them to the models without a live site, for the
states an integration test rarely reaches (a connector with every field set, a replayed
notification).
"""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from pydantic import BaseModel

from controller.api import models
from controller.api.chargers import charger_to_api
from controller.api.id_tags import id_tag_to_api
from controller.api.notifications import notification_to_api
from controller.api.reservations import Reservation, reservation_to_api
from controller.api.transactions import transaction_to_api
from controller.authorization import IdTag
from controller.chargers import ChargerState

AT = "2026-02-06T12:00:00.000Z"


def _exactly(model: type[BaseModel], body: dict) -> None:
    assert set(body) == set(model.model_fields), set(body) ^ set(model.model_fields)
    model.model_validate(body)


def _row(**columns: object) -> sqlite3.Row:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    names = list(columns)
    return conn.execute(f"SELECT {', '.join('? AS ' + n for n in names)}", list(columns.values())).fetchone()


def test_charger_and_its_connectors() -> None:
    state = ChargerState("CP1", "accepted", configured=True, vendor="v", model="m", last_boot=AT)
    connector = state.connector(1)
    connector.status, connector.error_code, connector.status_at = "Charging", "NoError", AT
    connector.energy_wh, connector.power_w, connector.meter_at = 1234.5, 7000.0, AT
    state.connector(0)
    body = charger_to_api(state)
    _exactly(models.Charger, body)
    assert [c["connectorId"] for c in body["connectors"]] == [0, 1]
    for c in body["connectors"]:
        _exactly(models.Connector, c)


def test_id_tag() -> None:
    _exactly(models.IdTag, id_tag_to_api(IdTag("T1", "Accepted", AT, "PARENT")))
    _exactly(models.IdTag, id_tag_to_api(IdTag("T2", "Blocked")))


@pytest.mark.parametrize("stopped", [False, True])
def test_transaction_summary_and_detail(stopped: bool) -> None:
    row = _row(id=7, charger_id="CP1", connector_id=1, id_tag="T1", status="completed" if stopped else "active",
               meter_start=1000, meter_stop=15000 if stopped else None, meter_last=9000.5, start_time=AT,
               stop_time="2026-02-06T12:45:00.000Z" if stopped else None, stop_reason="Local" if stopped else None,
               remote_started=1, mode="api", id_tag_status="Accepted", payment_amount=None,
               ocpp_transaction_id="7f3c-station" if stopped else None, reservation_id=None,
               closed_by="controller" if stopped else None, clock_suspect=None, booked_at=AT, updated_at=AT)
    summary = transaction_to_api(row, detail=False)
    _exactly(models.TransactionSummary, summary)
    detail = transaction_to_api(row, detail=True)
    _exactly(models.Transaction, detail)
    # seed 001's order: the meter readings come before the energy they give
    assert list(detail)[:8] == ["id", "transactionId", "chargeBoxId", "connectorId", "idTag", "status",
                                "meterStart", "meterStop"]
    if stopped:
        assert (detail["energyDelivered"], detail["durationMinutes"]) == (14.0, 45)
    assert detail["closedBy"] == ("controller" if stopped else None)


def test_reservation() -> None:
    row = _row(id=4, charger_id="CP1", connector_id=2, id_tag="T1", parent_id_tag=None, expires_at=AT,
               status="accepted", transaction_id=None, created_at=AT, updated_at=AT)
    _exactly(Reservation, reservation_to_api(row))


def test_notification() -> None:
    row = _row(id=3, event_id="e-1", type="start", charger_id="CP1", transaction_id=7, status="pending", attempts=2,
               last_status=503, last_error="HTTP 503", last_attempt_at=AT, next_attempt_at=AT, created_at=AT,
               delivered_at=None, payload=orjson.dumps({"a": 1}).decode())
    _exactly(models.Notification, notification_to_api(row))


def test_the_pagination_envelope() -> None:
    query = models.TransactionQuery(limit=5, offset=10)
    body = models.page("transactions", [], 0, query)
    assert body == {"transactions": [], "pagination": {"total": 0, "limit": 5, "offset": 10}}
    models.TransactionList.model_validate(body)
