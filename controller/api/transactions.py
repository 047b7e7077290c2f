"""REST resources for transactions (the published transactions API): the history, one transaction in full, a remote stop.
(A remote start is a charger's resource: controller/api/chargers.py.)"""

from __future__ import annotations

import sqlite3
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import int_param, parse_query
from controller.elapsed import charge_duration_s
from controller.transactions import Transactions


def transaction_to_api(row: sqlite3.Row, detail: bool, running_s: float | None = None) -> dict[str, Any]:
    """A stored transaction as models.Transaction (`detail`) or models.TransactionSummary, its keys
    in the order the published transactions API gives. `running_s`: Transactions.running_for."""
    meter_start, meter_stop = row["meter_start"], row["meter_stop"]
    last = meter_stop if meter_stop is not None else row["meter_last"]
    energy = round((last - meter_start) / 1000, 3) if meter_start is not None and last is not None else None
    seconds = charge_duration_s(row, running_s)
    duration = None if seconds is None else int(seconds // 60)
    body = {
        "id": f"txn_{row['id']}",
        "transactionId": row["id"],
        "chargeBoxId": row["charger_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "status": row["status"],
    }
    if detail:
        body.update(meterStart=meter_start, meterStop=meter_stop)
    body.update(energyDelivered=energy, durationMinutes=duration,
                startTime=row["start_time"], stopTime=row["stop_time"])
    if detail:
        body.update(stopReason=row["stop_reason"], remoteStarted=bool(row["remote_started"]),
                    mode=row["mode"], idTagStatus=row["id_tag_status"], paymentAmount=row["payment_amount"],
                    ocppTransactionId=row["ocpp_transaction_id"], clockSuspect=bool(row["clock_suspect"]))
    return body


def _transaction_id(text: str) -> int:
    return int_param("transactionId", text)


def register(app: QuartTrio, transactions: Transactions) -> None:
    @app.get("/api/v1/transactions")
    async def list_transactions() -> Response:
        query = parse_query(models.TransactionQuery)
        rows, total = await transactions.page(query.chargeBoxId, query.status, query.limit, query.offset)
        return jsonify(models.page("transactions", [
            transaction_to_api(r, detail=False, running_s=transactions.running_for(r["id"])) for r in rows], total, query))

    @app.get("/api/v1/transactions/<transaction_id>")
    async def get_transaction(transaction_id: str) -> Response:
        row = await transactions.get(_transaction_id(transaction_id))
        return jsonify(transaction_to_api(row, detail=True, running_s=transactions.running_for(row["id"])))

    @app.post("/api/v1/transactions/<transaction_id>/stop")
    async def stop_transaction(transaction_id: str) -> tuple[Response, int]:
        stopped = await transactions.remote_stop(_transaction_id(transaction_id))
        return jsonify({
            "message": "Remote stop accepted by charger",
            **stopped,
            "status": "stopping",
            "note": "Transaction will stop shortly. Final details available after StopTransaction is received.",
        }), 202


# -- the OpenAPI section -------------------------------------------------------------------------

TRANSACTION_ID = openapi.path_param("transactionId", openapi.ID_SCHEMA, "The OCPP transaction id")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/transactions": {"get": _op(
        "listTransactions", "Transactions", "Transactions, newest first, with optional filters",
        {"200": _response("A page of transactions", models.TransactionList), **_errors(422)},
        query=models.TransactionQuery)},
    "/api/v1/transactions/{transactionId}": {"get": _op(
        "getTransaction", "Transactions", "Full details of one transaction",
        {"200": _response("The transaction", models.Transaction), **_errors(404, 422)},
        parameters=[TRANSACTION_ID])},
    "/api/v1/transactions/{transactionId}/stop": {"post": _op(
        "remoteStop", "Transactions", "Stop an active charging session",
        {"202": _response("Remote stop accepted by the charger", models.RemoteStopResponse),
         **_errors(404, 409, 422, 504)},
        parameters=[TRANSACTION_ID])},
})
