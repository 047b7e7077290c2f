"""REST resources for transactions (the published transactions API): the history, one transaction in full, a remote stop;
beyond it, the history as CSV for a spreadsheet or an accountant, and a transaction's meter values.
(A remote start is a charger's resource: controller/api/chargers.py.)"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import AsyncIterator
from datetime import tzinfo
from typing import Any

import orjson
from quart import Response, jsonify, request
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import int_param, parse_query
from controller.live_config import LiveConfig
from controller.store.transactions import TransactionFilter
from controller.timefmt import parse_iso
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
                    ocppTransactionId=row["ocpp_transaction_id"], reservationId=row["reservation_id"],
                    closedBy=closed_by(row), clockSuspect=bool(row["clock_suspect"]))
    return body


def closed_by(row: sqlite3.Row) -> str | None:
    """Who ended a transaction: the controller, for one it closed when its charger started another
    on the connector (store/transactions.py close_superseded), else the charger."""
    if row["closed_by"] == "controller":
        return "controller"
    return "charger" if row["status"] == "completed" else None


def _transaction_id(text: str) -> int:
    return int_param("transactionId", text)


def _filter(query: models.TransactionFilterQuery) -> TransactionFilter:
    return TransactionFilter(charger_id=query.chargeBoxId, status=query.status, id_tag=query.idTag,
                             start_from=query.from_, start_to=query.to)


CSV_COLUMNS = ["transactionId", "chargeBoxId", "connectorId", "idTag", "status", "startTimeUtc", "stopTimeUtc",
               "startTimeLocal", "stopTimeLocal", "durationMinutes", "meterStartWh", "meterStopWh", "energyKWh",
               "stopReason"]
"""The export's columns: energy in kWh, times in UTC and in the site's time zone."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str | None:
    """A text cell a spreadsheet will not run as a formula (an id tag comes from a card)."""
    return f"'{value}" if value and value.startswith(_FORMULA_START) else value


def _local(text: str | None, zone: tzinfo | None) -> str | None:
    """A stored UTC time in `zone` (None: the system's), ISO 8601 with its offset."""
    return parse_iso(text).astimezone(zone).isoformat(timespec="seconds") if text else None


def csv_row(row: sqlite3.Row, zone: tzinfo | None) -> list[Any]:
    t = transaction_to_api(row, detail=True)
    return [t["transactionId"], _text(t["chargeBoxId"]), t["connectorId"], _text(t["idTag"]), t["status"],
            t["startTime"], t["stopTime"], _local(t["startTime"], zone), _local(t["stopTime"], zone),
            t["durationMinutes"], t["meterStart"], t["meterStop"], t["energyDelivered"], _text(t["stopReason"])]


async def csv_lines(rows: AsyncIterator[sqlite3.Row], zone: tzinfo | None) -> AsyncIterator[bytes]:
    """The export, header first, a few hundred rows per chunk of the streamed answer."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow(csv_row(row, zone))
        count += 1
        if count % 200 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def meter_value_to_api(row: sqlite3.Row) -> dict[str, Any]:
    values = orjson.loads(row["sampled_value"])
    return {"timestamp": row["timestamp"], "connectorId": row["connector_id"],
            "sampledValue": values if isinstance(values, list) else [values]}


def register(app: QuartTrio, transactions: Transactions, config: LiveConfig) -> None:
    def csv_export(query: models.TransactionFilterQuery) -> Response:
        zone = config.current.site.zone()
        response = Response(csv_lines(transactions.each(_filter(query)), zone), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        return response

    @app.get("/api/v1/transactions")
    async def list_transactions() -> Response:
        query = parse_query(models.TransactionQuery)
        if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
            return csv_export(query)  # every match, as /api/v1/transactions.csv gives it
        before_id = int(query.cursor) if query.cursor is not None else None
        rows, total = await transactions.page(_filter(query), query.limit + 1, query.offset, before_id)
        more = len(rows) > query.limit
        rows = rows[:query.limit]
        body = models.page("transactions", [transaction_to_api(r, detail=False, running_s=transactions.running_for(r["id"]))
                                            for r in rows], total, query)
        body["pagination"]["nextCursor"] = str(rows[-1]["id"]) if more else None
        return jsonify(body)

    @app.get("/api/v1/transactions.csv")
    async def export_transactions() -> Response:
        return csv_export(parse_query(models.TransactionFilterQuery))

    @app.get("/api/v1/transactions/<transaction_id>")
    async def get_transaction(transaction_id: str) -> Response:
        row = await transactions.get(_transaction_id(transaction_id))
        return jsonify(transaction_to_api(row, detail=True, running_s=transactions.running_for(row["id"])))

    @app.get("/api/v1/transactions/<transaction_id>/meter-values")
    async def list_meter_values(transaction_id: str) -> Response:
        number = _transaction_id(transaction_id)
        query = parse_query(models.MeterValueQuery)
        rows, total = await transactions.meter_values(number, query.limit, query.offset)
        return jsonify(models.page("meterValues", [meter_value_to_api(r) for r in rows], total, query,
                                   transactionId=number))

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
        {"200": {"description": "A page of transactions; with `Accept: text/csv`, every matching transaction as "
                                "CSV, as /api/v1/transactions.csv gives it (limit, offset and cursor do not apply)",
                 "content": {"application/json": {"schema": models.TransactionList},
                             "text/csv": {"schema": {"type": "string"}}}},
         **_errors(422)},
        query=models.TransactionQuery)},
    "/api/v1/transactions.csv": {"get": _op(
        "exportTransactions", "Transactions", "Transactions as CSV, newest first, with the list's filters",
        {"200": _response(
            "Every matching transaction, one CSV row each (RFC 4180, header first): " + ", ".join(CSV_COLUMNS)
            + ". Energy in kWh; times in UTC and in the site's time zone ([site] timezone, else the system's)."
            " A text cell that a spreadsheet would run as a formula starts with an apostrophe.",
            {"type": "string"}, media="text/csv"), **_errors(422)},
        query=models.TransactionFilterQuery)},
    "/api/v1/transactions/{transactionId}": {"get": _op(
        "getTransaction", "Transactions", "Full details of one transaction",
        {"200": _response("The transaction", models.Transaction), **_errors(404, 422)},
        parameters=[TRANSACTION_ID])},
    "/api/v1/transactions/{transactionId}/meter-values": {"get": _op(
        "listMeterValues", "Transactions", "A transaction's meter values, in the order they arrived",
        {"200": _response("A page of meter values", models.MeterValueList), **_errors(404, 422)},
        parameters=[TRANSACTION_ID], query=models.MeterValueQuery)},
    "/api/v1/transactions/{transactionId}/stop": {"post": _op(
        "remoteStop", "Transactions", "Stop an active charging session",
        {"202": _response("Remote stop accepted by the charger", models.RemoteStopResponse),
         **_errors(404, 409, 422, 504)},
        parameters=[TRANSACTION_ID])},
})
