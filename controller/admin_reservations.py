"""`evedge reservations`: connectors held for an id tag, over the REST API.

    evedge reservations list [--charger ID] [--status S] [--limit N]
    evedge reservations create CHARGER CONNECTOR TAG (--minutes N | --until ISO) [--parent TAG]
    evedge reservations cancel CHARGER RESERVATION_ID
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from controller.admin_client import EXIT_USAGE, Api, CliError, Handler, command, show, table
from controller.store.reservations import STATUSES
from controller.timefmt import iso, utcnow

COLUMNS = [("ID", "reservationId"), ("CHARGER", "chargeBoxId"), ("CONN", "connectorId"), ("ID TAG", "idTag"),
           ("PARENT", "parentIdTag"), ("STATUS", "status"), ("EXPIRES", "expiresAt"), ("TRANSACTION", "transactionId")]


def _charger_path(charger: str) -> str:
    return f"/api/v1/chargers/{quote(charger, safe='')}/reservations"


def reservations_list(args: argparse.Namespace, api: Api) -> None:
    params = {k: v for k, v in {"chargeBoxId": args.charger, "status": args.status, "limit": args.limit}.items()
              if v is not None}
    data = api.request("GET", "/api/v1/reservations", params=params)
    items = data.get("reservations", [])
    page = data.get("pagination") or {}
    show(args, data, table(items, COLUMNS) + (f"\n({len(items)} of {page.get('total')})" if page else ""))


def reservations_create(args: argparse.Namespace, api: Api) -> None:
    if (args.minutes is None) == (args.until is None):
        raise CliError("give one of --minutes and --until", EXIT_USAGE)
    expires_at = args.until or iso(utcnow() + timedelta(minutes=args.minutes))
    body: dict[str, Any] = {"connectorId": args.connector, "idTag": args.tag, "expiresAt": expires_at}
    if args.parent:
        body["parentIdTag"] = args.parent
    data = api.request("POST", _charger_path(args.charger), json=body)
    show(args, data, table([data], COLUMNS))


def reservations_cancel(args: argparse.Namespace, api: Api) -> None:
    data = api.request("DELETE", f"{_charger_path(args.charger)}/{args.id}")
    show(args, data, table([data], COLUMNS))


def add_commands(actions: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The actions of `evedge reservations`; `common` is the parent parser with the shared options."""
    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[common])
        parser.set_defaults(func=command(handler))
        return parser

    p = action("list", reservations_list, "newest first")
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--limit", type=int, default=50)
    p = action("create", reservations_create, "reserve a connector for an id tag (the charger gets ReserveNow)")
    p.add_argument("charger")
    p.add_argument("connector", type=int)
    p.add_argument("tag")
    p.add_argument("--minutes", type=float, help="held this many minutes from now")
    p.add_argument("--until", help="held until this time, ISO 8601 with a zone (2027-01-01T08:00:00Z)")
    p.add_argument("--parent", help="cards with this parent id tag may use it too")
    p = action("cancel", reservations_cancel, "cancel a reservation (the charger gets CancelReservation)")
    p.add_argument("charger")
    p.add_argument("id", type=int)
