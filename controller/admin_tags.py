"""`evedge tags`: the local id-tag (card) list, over the REST API.

    evedge tags list | add TAG [--status S] [--expiry ISO] [--parent TAG]
    evedge tags set TAG [--status S] [--expiry ISO|none] [--parent TAG|none]
    evedge tags block TAG | unblock TAG | delete TAG
    evedge tags import FILE.csv | export [FILE.csv]

A change to one field is a PATCH, so blocking a card keeps its expiry and its parent. `export`
writes the CSV that `import` reads (idTag,status,expiryDate,parentIdTag), so a list moves between
sites, or into a spreadsheet and back.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import Any
from urllib.parse import quote

from controller.admin_client import EXIT_API, EXIT_UNREACHABLE, EXIT_USAGE, Api, CliError, Handler, command, show, table

COLUMNS = [("ID TAG", "idTag"), ("STATUS", "status"), ("EXPIRY", "expiryDate"), ("PARENT", "parentIdTag")]
CSV_FIELDS = [key for _, key in COLUMNS]
STATUSES = ["Accepted", "Blocked", "Expired", "Invalid"]
NONE = "none"  # `--expiry none`, `--parent none`: clear the field


def _path(tag: str) -> str:
    return f"/api/v1/id-tags/{quote(tag, safe='')}"


def _body(status: str | None, expiry: str | None, parent: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status or "Accepted"}
    if expiry:
        body["expiryDate"] = expiry
    if parent:
        body["parentIdTag"] = parent
    return body


def tags_list(args: argparse.Namespace, api: Api) -> None:
    data = api.request("GET", "/api/v1/id-tags")
    show(args, data, table(data.get("idTags", []), COLUMNS))


def tags_add(args: argparse.Namespace, api: Api) -> None:
    data = api.request("POST", "/api/v1/id-tags", json={"idTag": args.tag, **_body(args.status, args.expiry, args.parent)})
    show(args, data, table([data], COLUMNS))


def _patch(args: argparse.Namespace, api: Api, changes: dict[str, Any]) -> None:
    data = api.request("PATCH", _path(args.tag), json=changes)
    show(args, data, table([data], COLUMNS))


def tags_set(args: argparse.Namespace, api: Api) -> None:
    """Change the fields given, keep the others."""
    given = {"status": args.status, "expiryDate": args.expiry, "parentIdTag": args.parent}
    changes = {k: (None if v == NONE else v) for k, v in given.items() if v is not None}
    if not changes:
        raise CliError("nothing to change: give --status, --expiry or --parent", EXIT_USAGE)
    _patch(args, api, changes)


def tags_block(args: argparse.Namespace, api: Api) -> None:
    _patch(args, api, {"status": "Blocked"})


def tags_unblock(args: argparse.Namespace, api: Api) -> None:
    _patch(args, api, {"status": "Accepted"})


def tags_delete(args: argparse.Namespace, api: Api) -> None:
    api.request("DELETE", _path(args.tag))
    show(args, {"deleted": args.tag}, f"deleted id tag {args.tag}")


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
            imported.append(api.request("PUT", _path(tag), json=_body(status, expiry, parent)))
        except CliError as exc:
            if exc.code == EXIT_UNREACHABLE:
                raise
            failed.append({"row": number, "idTag": tag, "error": str(exc)})
    data = {"imported": len(imported), "failed": failed}
    human = f"imported {len(imported)} id tags from {args.file}"
    if failed:
        human += "\n" + table(failed, [("ROW", "row"), ("ID TAG", "idTag"), ("ERROR", "error")])
    show(args, data, human)
    if failed:
        raise CliError(f"{len(failed)} rows of {args.file} were not imported", EXIT_API)


def tags_export(args: argparse.Namespace, api: Api) -> None:
    """The list as CSV, header first: to FILE, or to stdout."""
    tags = api.request("GET", "/api/v1/id-tags").get("idTags", [])
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in tag.items()} for tag in tags)
    if args.file in (None, "-"):
        sys.stdout.write(out.getvalue())
        return
    try:
        with open(args.file, "w", newline="", encoding="utf-8") as fh:
            fh.write(out.getvalue())
    except OSError as exc:
        raise CliError(f"cannot write {args.file}: {exc.strerror or exc}", EXIT_USAGE) from None
    print(f"exported {len(tags)} id tags to {args.file}", file=sys.stderr)


def add_commands(actions: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The actions of `evedge tags`; `common` is the parent parser with the shared options."""
    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help, parents=[common])
        parser.set_defaults(func=command(handler))
        return parser

    action("list", tags_list, "list id tags")
    p = action("add", tags_add, "add an id tag")
    p.add_argument("tag")
    p.add_argument("--status", choices=STATUSES, default="Accepted")
    p.add_argument("--expiry", help="expiry date, ISO 8601 (2027-01-01T00:00:00Z)")
    p.add_argument("--parent", help="parent id tag (groups a fleet's cards)")
    p = action("set", tags_set, "change some fields of an id tag, keep the others")
    p.add_argument("tag")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--expiry", help=f"expiry date, ISO 8601; {NONE!r} removes it")
    p.add_argument("--parent", help=f"parent id tag; {NONE!r} removes it")
    action("block", tags_block, "block an id tag (expiry and parent stay)").add_argument("tag")
    action("unblock", tags_unblock, "accept a blocked id tag again").add_argument("tag")
    action("delete", tags_delete, "remove an id tag from the list").add_argument("tag")
    p = action("import", tags_import, "add or update id tags from a CSV file "
               "(idTag[,status[,expiryDate[,parentIdTag]]], header optional)")
    p.add_argument("file")
    p = action("export", tags_export, "write the list as CSV (the format import reads)")
    p.add_argument("file", nargs="?", help="the CSV file (default: stdout)")
