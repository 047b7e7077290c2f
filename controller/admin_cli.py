"""Installer commands: talk to a running controller's REST API.

    evedge chargers [list]
    evedge transactions list [--charger ID] [--status S] [--limit N] | show ID
    evedge tags list | add TAG [--status S] [--expiry ISO] [--parent TAG] | block TAG | import FILE.csv
    evedge operations list | send CHARGER ACTION [JSON]
    evedge notifications [list] [--status S] | retry ID

The API is found from --url/--api-key, else $EVEDGE_URL/$EVEDGE_API_KEY, else --config (its
[api] listen and first api key; `0.0.0.0` becomes 127.0.0.1). Tables for people by default,
--json for scripts. Exit codes: 0 ok, 1 the API refused or failed (its message on stderr),
2 usage or config error, 3 the controller cannot be reached.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

import httpx

from controller.config import ConfigError, default_config_path, load_config, parse_listen

EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_API) -> None:
        super().__init__(message)
        self.code = code


# -- finding and calling the API --------------------------------------------------------------


def _endpoint(args: argparse.Namespace) -> tuple[str, str]:
    url = args.url or os.environ.get("EVEDGE_URL")
    key = args.api_key or os.environ.get("EVEDGE_API_KEY")
    config_path = args.config or (None if url else default_config_path())
    if config_path and (not url or not key):
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            raise CliError(f"{exc} (or give --url and --api-key)", EXIT_USAGE) from None
        if not url:
            host, port = parse_listen(config.api.listen)
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
            url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if not key and config.api.api_keys:
            key = config.api.api_keys[0]
    if not url:
        raise CliError("no API address: give --url, set EVEDGE_URL or --config", EXIT_USAGE)
    return url.rstrip("/"), key or ""


class Api:
    def __init__(self, args: argparse.Namespace) -> None:
        url, key = _endpoint(args)
        self.client = httpx.Client(base_url=url, headers={"X-API-Key": key} if key else {},
                                   timeout=args.timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the controller at {self.client.base_url}: {exc}", EXIT_UNREACHABLE) from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = f"{body.get('error', 'Error')}: {body.get('message', '')}"
            except (ValueError, AttributeError):
                message = response.text.strip()[:200]
            raise CliError(f"{method} {path} failed ({response.status_code}) {message}")
        if response.status_code == 204 or not response.content:
            return {}
        return response.json()


# -- output ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(rows: Iterable[dict], columns: list[tuple[str, str]]) -> str:
    """`columns` is [(header, key)]; returns an aligned plain-text table."""
    cells = [[h for h, _ in columns]] + [[_cell(row.get(k)) for _, k in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def _print(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, indent=2) if args.json else human)


# -- commands -------------------------------------------------------------------------------


def chargers(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/chargers")
    rows = []
    for c in data.get("chargers", []):
        connectors = " ".join(f"{k['connectorId']}:{k.get('status') or '?'}" for k in c.get("connectors", [])
                              if k.get("connectorId"))
        rows.append({**c, "vendorModel": " ".join(filter(None, [c.get("vendor"), c.get("model")])) or None,
                     "connectorStates": connectors or None})
    _print(args, data, table(rows, [("CHARGER", "chargeBoxId"), ("REGISTRATION", "registration"),
                                    ("ONLINE", "online"), ("MODEL", "vendorModel"),
                                    ("LAST HEARTBEAT", "lastHeartbeat"), ("CONNECTORS", "connectorStates")]))


def transactions_list(args: argparse.Namespace, api: Api) -> None:
    params = {k: v for k, v in {"chargeBoxId": args.charger, "status": args.status, "limit": args.limit}.items()
              if v is not None}
    data = api.request("GET", "/api/v1/transactions", params=params)
    human = table(data.get("transactions", []), [
        ("ID", "transactionId"), ("CHARGER", "chargeBoxId"), ("CONN", "connectorId"), ("ID TAG", "idTag"),
        ("STATUS", "status"), ("KWH", "energyDelivered"), ("MIN", "durationMinutes"), ("START", "startTime"),
        ("STOP", "stopTime")])
    page = data.get("pagination") or {}
    if page:
        human += f"\n({len(data.get('transactions', []))} of {page.get('total')})"
    _print(args, data, human)


def transactions_show(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", f"/api/v1/transactions/{args.id}")
    width = max((len(k) for k in data), default=0)
    _print(args, data, "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in data.items()))


_TAG_COLUMNS = [("ID TAG", "idTag"), ("STATUS", "status"), ("EXPIRY", "expiryDate"), ("PARENT", "parentIdTag")]


def tags_list(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/id-tags")
    _print(args, data, table(data.get("idTags", []), _TAG_COLUMNS))


def _tag_body(status: str | None, expiry: str | None, parent: str | None) -> dict:
    body: dict = {"status": status or "Accepted"}
    if expiry:
        body["expiryDate"] = expiry
    if parent:
        body["parentIdTag"] = parent
    return body


def tags_add(args: argparse.Namespace, api: Api) -> None:
    data = api.request("POST", "/api/v1/id-tags",
                       json={"idTag": args.tag, **_tag_body(args.status, args.expiry, args.parent)})
    _print(args, data, table([data], _TAG_COLUMNS))


def tags_block(args: argparse.Namespace, api: Api) -> None:
    current = api.request("GET", f"/api/v1/id-tags/{args.tag}")
    body = _tag_body("Blocked", current.get("expiryDate"), current.get("parentIdTag"))
    data = api.request("PUT", f"/api/v1/id-tags/{args.tag}", json=body)
    _print(args, data, table([data], _TAG_COLUMNS))


def tags_import(args: argparse.Namespace, api: Api) -> None:
    """CSV with columns idTag[,status[,expiryDate[,parentIdTag]]]; a header row is optional."""
    try:
        with open(args.file, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r) and not r[0].startswith("#")]
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", EXIT_USAGE) from None
    if rows and rows[0][0].strip().lower() in ("idtag", "id_tag", "id tag", "tag"):
        rows = rows[1:]
    imported, failed = [], []
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() or None for c in row] + [None] * 4
        tag, status, expiry, parent = cells[:4]
        try:
            if not tag:
                raise CliError("empty id tag")
            imported.append(api.request("PUT", f"/api/v1/id-tags/{tag}", json=_tag_body(status, expiry, parent)))
        except CliError as exc:
            if exc.code == EXIT_UNREACHABLE:
                raise
            failed.append({"row": number, "idTag": tag, "error": str(exc)})
    data = {"imported": len(imported), "failed": failed}
    human = f"imported {len(imported)} id tags from {args.file}"
    if failed:
        human += "\n" + table(failed, [("ROW", "row"), ("ID TAG", "idTag"), ("ERROR", "error")])
    _print(args, data, human)
    if failed:
        raise CliError(f"{len(failed)} rows of {args.file} were not imported", EXIT_API)


def operations_list(args: argparse.Namespace, api: Api | None) -> None:
    """The operations of each OCPP version (a charger gets those of the version it speaks)."""
    from controller.csms.server import PROTOCOLS

    actions = {name: sorted(protocol.operations) for name, protocol in PROTOCOLS.items()}
    _print(args, actions, "\n".join(f"{name}: {' '.join(names)}" for name, names in actions.items()))


def operations_send(args: argparse.Namespace, api: Api) -> None:
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except ValueError as exc:
        raise CliError(f"payload is not valid JSON: {exc}", EXIT_USAGE) from None
    data = api.request("POST", f"/api/v1/chargers/{args.charger}/operations/{args.action}", json=payload)
    _print(args, data, json.dumps(data, indent=2))


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
        human += "\nqueue: " + " ".join(f"{k}={_cell(v)}" for k, v in summary.items())
    _print(args, data, human)


def notifications_retry(args: argparse.Namespace, api: Api) -> None:
    data = api.request("POST", f"/api/v1/notifications/{args.id}/retry")
    _print(args, data, f"notification {args.id} queued for retry" + (f": {_cell(data)}" if data else ""))


# -- argparse wiring --------------------------------------------------------------------------


def _run(handler, needs_api: bool = True):
    def run(args: argparse.Namespace) -> int:
        try:
            handler(args, Api(args) if needs_api else None)
        except CliError as exc:
            print(f"evedge: {exc}", file=sys.stderr)
            return exc.code
        return 0

    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    def options(suppress: bool) -> argparse.ArgumentParser:
        # The options work before and after the action (`tags --json list`, `tags list --json`):
        # the action's copies default to SUPPRESS so they never overwrite the group's values.
        parser = argparse.ArgumentParser(add_help=False)

        def d(value):
            return argparse.SUPPRESS if suppress else value

        parser.add_argument("--config", "-c", default=d(None), help=f"the site's TOML file (default "
                            f"{default_config_path()} unless --url or $EVEDGE_URL is given; $EVEDGE_CONFIG sets it)")
        parser.add_argument("--url", default=d(None), help="the API, e.g. http://127.0.0.1:8080 (env EVEDGE_URL)")
        parser.add_argument("--api-key", default=d(None), help="an X-API-Key (env EVEDGE_API_KEY)")
        parser.add_argument("--json", action="store_true", default=d(False), help="print JSON for scripts")
        parser.add_argument("--timeout", type=float, default=d(40.0), help="seconds to wait for the API (default 40)")
        return parser

    top, common = options(False), options(True)

    def group(name: str, help: str, default=None) -> argparse._SubParsersAction:
        parser = sub.add_parser(name, help=help, parents=[top])
        inner = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=default is None)
        if default is not None:
            parser.set_defaults(func=default)
        return inner

    ch = group("chargers", "list chargers and their state", default=_run(chargers))
    ch.add_parser("list", help="list chargers", parents=[common]).set_defaults(func=_run(chargers))

    tx = group("transactions", "list or show transactions")
    p = tx.add_parser("list", help="newest first", parents=[common])
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--status", choices=["pending", "active", "stopping", "completed", "failed"])
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_run(transactions_list))
    p = tx.add_parser("show", help="one transaction in detail", parents=[common])
    p.add_argument("id", type=int)
    p.set_defaults(func=_run(transactions_show))

    tg = group("tags", "the local id-tag (card) list")
    tg.add_parser("list", help="list id tags", parents=[common]).set_defaults(func=_run(tags_list))
    p = tg.add_parser("add", help="add an id tag", parents=[common])
    p.add_argument("tag")
    p.add_argument("--status", choices=["Accepted", "Blocked", "Expired", "Invalid"], default="Accepted")
    p.add_argument("--expiry", help="expiry date, ISO 8601 (2027-01-01T00:00:00Z)")
    p.add_argument("--parent", help="parent id tag (groups a fleet's cards)")
    p.set_defaults(func=_run(tags_add))
    p = tg.add_parser("block", help="block an id tag", parents=[common])
    p.add_argument("tag")
    p.set_defaults(func=_run(tags_block))
    p = tg.add_parser("import", help="add or update id tags from a CSV file "
                      "(idTag[,status[,expiryDate[,parentIdTag]]], header optional)", parents=[common])
    p.add_argument("file")
    p.set_defaults(func=_run(tags_import))

    op = group("operations", "send an OCPP operation to a charger")
    op.add_parser("list", help="the operations a central system can send, per OCPP version",
                  parents=[common]).set_defaults(func=_run(operations_list, needs_api=False))
    p = op.add_parser("send", help="send one, print the charger's answer", parents=[common])
    p.add_argument("charger")
    p.add_argument("action", help="e.g. Reset, TriggerMessage, ChangeConfiguration")
    p.add_argument("payload", nargs="?", help='the JSON payload, e.g. \'{"type": "Soft"}\' (default {})')
    p.set_defaults(func=_run(operations_send))

    nt = group("notifications", "the upstream notification queue", default=_run(notifications_list))
    p = nt.add_parser("list", help="queue state", parents=[common])
    p.add_argument("--status", choices=["pending", "delivered", "failed"])
    p.add_argument("--charger", help="only this charger")
    p.add_argument("--limit", type=int)
    p.set_defaults(func=_run(notifications_list))
    p = nt.add_parser("retry", help="deliver a notification again now", parents=[common])
    p.add_argument("id")
    p.set_defaults(func=_run(notifications_retry))
