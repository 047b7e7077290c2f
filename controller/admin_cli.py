"""Installer commands: talk to a running controller's REST API.

    evedge chargers [list] | approve ID | reject ID
    evedge meters [list]
    evedge readers [list]
    evedge transactions list [--charger ID] [--status S] [--id-tag T] [--from T] [--to T]
                             [--limit N] [--offset N | --cursor C] | show ID
    evedge transactions export [--from T] [--to T] [--charger ID] [--status S] [--id-tag T] [--output FILE]
    evedge tags ...                        (controller/admin_tags.py)
    evedge operations list | send CHARGER ACTION [JSON]
    evedge notifications [list] [--status S] | retry ID
    evedge reservations list | create CHARGER CONNECTOR TAG --minutes N | cancel CHARGER ID
                                           (controller/admin_reservations.py)
    evedge profiles list CHARGER | set CHARGER CONNECTOR JSON | clear CHARGER ID   (controller/admin_profiles.py)

How the API is found and called: controller/admin_client.py. Tables for people by default,
--json for scripts. Exit codes: 0 ok, 1 the API refused or failed (its message on stderr),
2 usage or config error, 3 the controller cannot be reached.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any
from urllib.parse import quote

from controller import admin_profiles, admin_reservations, admin_tags
from controller.admin_client import EXIT_USAGE, Api, CliError, Handler, cell, command, options, show, table


# -- commands -------------------------------------------------------------------------------


_CHARGER_COLUMNS = [("CHARGER", "chargeBoxId"), ("REGISTRATION", "registration"), ("ONLINE", "online"),
                    ("MODEL", "vendorModel"), ("LAST HEARTBEAT", "lastHeartbeat"), ("CONNECTORS", "connectorStates")]


def _charger_row(c: dict[str, Any]) -> dict[str, Any]:
    connectors = " ".join(f"{k['connectorId']}:{k.get('status') or '?'}" for k in c.get("connectors", [])
                          if k.get("connectorId"))
    return {**c, "vendorModel": " ".join(filter(None, [c.get("vendor"), c.get("model")])) or None,
            "connectorStates": connectors or None}


def chargers(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/chargers")
    show(args, data, table([_charger_row(c) for c in data.get("chargers", [])], _CHARGER_COLUMNS))


def _registration(verb: str) -> Handler:
    """`chargers approve ID` / `chargers reject ID`: the charger as it is afterwards."""
    def handler(args: argparse.Namespace, api: Api) -> None:
        data = api.request("POST", f"/api/v1/chargers/{quote(args.charger, safe='')}/{verb}")
        show(args, data, table([_charger_row(data)], _CHARGER_COLUMNS))

    return handler


def _placement(item: dict[str, Any]) -> str | None:
    return f"{item['charger']}:{item['connector']}" if item.get("charger") else None


def meters(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/meters")
    rows = [{**m, "placement": _placement(m) or m.get("role"),
             "importKwh": None if m.get("energyImportWh") is None else round(m["energyImportWh"] / 1000, 3)}
            for m in data.get("meters", [])]
    show(args, data, table(rows, [("METER", "id"), ("MODEL", "model"), ("BUS", "bus"), ("ON", "placement"),
                                  ("ONLINE", "online"), ("POWER W", "powerW"), ("IMPORT KWH", "importKwh"),
                                  ("UPDATED", "updatedAt"), ("LAST ERROR", "lastError")]))


def readers(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/readers")
    rows = [{**r, "placement": _placement(r), "lastResult": (r.get("lastTapResult") or {}).get("result")}
            for r in data.get("readers", [])]
    show(args, data, table(rows, [("READER", "id"), ("KIND", "kind"), ("ON", "placement"),
                                  ("CONNECTED", "connected"), ("TAPS", "taps"), ("LAST TAP", "lastTapAt"),
                                  ("ID TAG", "lastIdTag"), ("RESULT", "lastResult"), ("LAST ERROR", "lastError")]))


def _transaction_filters(args: argparse.Namespace) -> dict[str, Any]:
    given = {"chargeBoxId": args.charger, "status": args.status, "idTag": args.id_tag,
             "from": getattr(args, "from"), "to": args.to}
    return {k: v for k, v in given.items() if v is not None}


def transactions_list(args: argparse.Namespace, api: Api) -> None:
    params = {**_transaction_filters(args), "limit": args.limit, "offset": args.offset}
    if args.cursor is not None:
        params["cursor"] = args.cursor
    data = api.request("GET", "/api/v1/transactions", params=params)
    human = table(data.get("transactions", []), [
        ("ID", "transactionId"), ("CHARGER", "chargeBoxId"), ("CONN", "connectorId"), ("ID TAG", "idTag"),
        ("STATUS", "status"), ("KWH", "energyDelivered"), ("MIN", "durationMinutes"), ("START", "startTime"),
        ("STOP", "stopTime")])
    page = data.get("pagination") or {}
    if page:
        human += f"\n({len(data.get('transactions', []))} of {page.get('total')})"
        if page.get("nextCursor"):
            human += f"; next page: --cursor {page['nextCursor']}"
    show(args, data, human)


def transactions_export(args: argparse.Namespace, api: Api) -> None:
    """Every matching transaction as CSV (the API's columns), to --output or stdout."""
    params = _transaction_filters(args)
    if args.output in (None, "-"):
        api.download("/api/v1/transactions.csv", params, sys.stdout.buffer)
        sys.stdout.flush()
        return
    partial = f"{args.output}.part"  # a failed export never leaves a truncated file under the name
    try:
        with open(partial, "wb") as out:
            api.download("/api/v1/transactions.csv", params, out)
        os.replace(partial, args.output)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}", EXIT_USAGE) from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    with open(args.output, newline="", encoding="utf-8") as written:
        rows = sum(1 for _ in csv.reader(written)) - 1
    print(f"exported {rows} transactions to {args.output}", file=sys.stderr)


def transactions_show(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", f"/api/v1/transactions/{args.id}")
    width = max((len(k) for k in data), default=0)
    show(args, data, "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in data.items()))


def operations_list(args: argparse.Namespace, api: Api | None) -> None:
    """The operations of each OCPP version (a charger gets those of the version it speaks)."""
    from controller.csms.server import PROTOCOLS

    actions = {name: sorted(protocol.operations) for name, protocol in PROTOCOLS.items()}
    show(args, actions, "\n".join(f"{name}: {' '.join(names)}" for name, names in actions.items()))


def operations_send(args: argparse.Namespace, api: Api) -> None:
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except ValueError as exc:
        raise CliError(f"payload is not valid JSON: {exc}", EXIT_USAGE) from None
    data = api.request("POST", f"/api/v1/chargers/{args.charger}/operations/{args.action}", json=payload)
    show(args, data, json.dumps(data, indent=2))


def notifications_list(args: argparse.Namespace, api: Api) -> None:
    params = {k: v for k, v in {"status": getattr(args, "status", None), "chargeBoxId": getattr(args, "charger", None),
                                "limit": getattr(args, "limit", None)}.items() if v is not None}
    data = api.request("GET", "/api/v1/notifications", params=params)
    items = data.get("notifications", [])
    summary = data.get("queue") or {}
    columns = [(h, k) for h, k in [("ID", "id"), ("TYPE", "type"), ("CHARGER", "chargeBoxId"),
                                   ("STATUS", "status"), ("ATTEMPTS", "attempts"), ("CREATED", "createdAt"),
                                   ("NEXT ATTEMPT", "nextAttemptAt"), ("LAST ERROR", "lastError")]
               if any(k in item for item in items)] or [("ID", "id"), ("STATUS", "status")]
    human = table(items, columns)
    if summary:
        human += "\nqueue: " + " ".join(f"{k}={cell(v)}" for k, v in summary.items())
    show(args, data, human)


def notifications_retry(args: argparse.Namespace, api: Api) -> None:
    data = api.request("POST", f"/api/v1/notifications/{args.id}/retry")
    show(args, data, f"notification {args.id} queued for retry" + (f": {cell(data)}" if data else ""))


# -- argparse wiring --------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction) -> None:
    top, common = options(False), options(True)

    def group(name: str, help: str, default: Any = None) -> argparse._SubParsersAction:
        parser = sub.add_parser(name, help=help, parents=[top])
        inner = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=default is None)
        if default is not None:
            parser.set_defaults(func=default)
        return inner

    ch = group("chargers", "list chargers and their state; approve or reject one", default=command(chargers))
    ch.add_parser("list", help="list chargers", parents=[common]).set_defaults(func=command(chargers))
    for verb, help in (("approve", "accept a pending or rejected charger (a connected one boots at once)"),
                       ("reject", "refuse a charger that is not in the config file (closes its connection)")):
        p = ch.add_parser(verb, help=help, parents=[common])
        p.add_argument("charger")
        p.set_defaults(func=command(_registration(verb)))

    for name, handler, help in (("meters", meters, "energy meters and their latest readings"),
                                ("readers", readers, "card readers and their last tap")):
        g = group(name, help, default=command(handler))
        g.add_parser("list", help=help, parents=[common]).set_defaults(func=command(handler))

    def filters(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", metavar="TIME", help="started at or after, ISO 8601 (2026-02-01 or "
                            "2026-02-01T00:00:00+01:00; without an offset: UTC)")
        parser.add_argument("--to", metavar="TIME", help="started before, ISO 8601")
        parser.add_argument("--charger", help="only this charger")
        parser.add_argument("--status", choices=["pending", "active", "stopping", "completed", "failed"])
        parser.add_argument("--id-tag", help="only this id tag (card)")

    tx = group("transactions", "list, show or export transactions")
    p = tx.add_parser("list", help="newest first", parents=[common])
    filters(p)
    p.add_argument("--limit", type=int, default=50, help="rows per page (at most 1000)")
    p.add_argument("--offset", type=int, default=0, help="skip this many rows")
    p.add_argument("--cursor", help="the page after the one that printed this cursor (stable while charges start)")
    p.set_defaults(func=command(transactions_list))
    p = tx.add_parser("export", help="all matching transactions as CSV (kWh, UTC and local times)", parents=[common])
    filters(p)
    p.add_argument("--output", "-o", metavar="FILE", help="the CSV file (default: stdout)")
    p.set_defaults(func=command(transactions_export))
    p = tx.add_parser("show", help="one transaction in detail", parents=[common])
    p.add_argument("id", type=int)
    p.set_defaults(func=command(transactions_show))

    admin_tags.add_commands(group("tags", "the local id-tag (card) list"), common)
    admin_profiles.add_commands(group("profiles", "charging profiles kept as records per charger"), common)

    op = group("operations", "send an OCPP operation to a charger")
    op.add_parser("list", help="the operations a central system can send, per OCPP version",
                  parents=[common]).set_defaults(func=command(operations_list, needs_api=False))
    p = op.add_parser("send", help="send one, print the charger's answer", parents=[common])
    p.add_argument("charger")
    p.add_argument("action", help="e.g. Reset, TriggerMessage, ChangeConfiguration")
    p.add_argument("payload", nargs="?", help='the JSON payload, e.g. \'{"type": "Soft"}\' (default {})')
    p.set_defaults(func=command(operations_send))

    nt = group("notifications", "the upstream notification queue", default=command(notifications_list))
    p = nt.add_parser("list", help="queue state", parents=[common])
    p.add_argument("--status", choices=["pending", "delivered", "failed"])
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=command(notifications_list))
    p = nt.add_parser("retry", help="deliver a notification again now", parents=[common])
    p.add_argument("id")
    p.set_defaults(func=command(notifications_retry))

    admin_reservations.add_commands(group("reservations", "connectors reserved for an id tag"), common)
