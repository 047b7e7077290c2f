"""`evedge profiles`: a charger's charging profiles kept as records, over the REST API.

    evedge profiles list CHARGER
    evedge profiles set CHARGER CONNECTOR PROFILE_JSON|@FILE
    evedge profiles clear CHARGER PROFILE_ID

PROFILE_JSON is an OCPP 1.6 `csChargingProfiles` object (ids from 2000, stack levels from 1:
docs/load-management.md); `@FILE` reads it from a file. The controller checks it, stores it and
sends it; `list` shows the charger's last answer to each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from controller.admin_client import EXIT_USAGE, Api, CliError, Handler, command, show, table

COLUMNS = [("ID", "chargingProfileId"), ("CONN", "connectorId"), ("PURPOSE", "purpose"), ("STACK", "stackLevel"),
           ("STATUS", "status"), ("SENT", "sentAt"), ("LIMITS", "limits")]


def _path(charger: str) -> str:
    return f"/api/v1/chargers/{quote(charger, safe='')}/charging-profiles"


def _row(profile: dict[str, Any]) -> dict[str, Any]:
    schedule = profile.get("csChargingProfiles", {}).get("chargingSchedule", {})
    unit = schedule.get("chargingRateUnit", "")
    limits = " ".join(f"{p.get('startPeriod')}s:{p.get('limit')}{unit}" for p in schedule.get("chargingSchedulePeriod", []))
    return {**profile, "limits": limits or None}


def _profile(text: str) -> dict[str, Any]:
    try:
        raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
        profile = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise CliError(f"profile: not a JSON object ({exc})", EXIT_USAGE) from None
    if not isinstance(profile, dict):
        raise CliError("profile: not a JSON object", EXIT_USAGE)
    return profile


def profiles_list(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", _path(args.charger))
    show(args, data, table([_row(p) for p in data.get("chargingProfiles", [])], COLUMNS))


def profiles_set(args: argparse.Namespace, api: Api) -> None:
    body = {"connectorId": args.connector, "csChargingProfiles": _profile(args.profile)}
    data = api.request("POST", _path(args.charger), json=body)
    show(args, data, table([_row(data)], COLUMNS))


def profiles_clear(args: argparse.Namespace, api: Api) -> None:
    data = api.request("DELETE", f"{_path(args.charger)}/{args.profile_id}")
    show(args, data, f"profile {args.profile_id}: the charger answered {data.get('status')}")


def add_commands(actions: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The actions of `evedge profiles`; `common` is the parent parser with the shared options."""
    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[common])
        parser.set_defaults(func=command(handler))
        parser.add_argument("charger")
        return parser

    action("list", profiles_list, "the profiles set on a charger, with its last answer to each")
    p = action("set", profiles_set, "store a charging profile and send it")
    p.add_argument("connector", type=int, help="0: the charger as a whole")
    p.add_argument("profile", help="an OCPP 1.6 csChargingProfiles JSON object, or @FILE")
    p = action("clear", profiles_clear, "clear a stored profile on the charger")
    p.add_argument("profile_id", type=int)
