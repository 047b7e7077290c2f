"""The dashboard's pages: each one reads what it shows through the parts the REST API uses and
in the API's shapes (the same `*_to_api` functions), so a page and the API never disagree."""

from __future__ import annotations

import json
import shutil
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as datetime_time
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, abort, g, render_template, request

from controller import __version__
from controller.api.chargers import charger_to_api
from controller.api.circuits import circuit_to_api
from controller.api.errors import Problem, int_param
from controller.api.hardware import meter_to_api, reader_to_api
from controller.api.id_tags import id_tag_to_api
from controller.api.notifications import notification_to_api
from controller.api.transactions import csv_lines, transaction_to_api
from controller.changes import Changes
from controller.chargers import ChargerState
from controller.dashboard import chart, live
from controller.dashboard.sessions import Session
from controller.errors import NotFound
from controller.store.stats import database_bytes
from controller.store.transactions import TransactionFilter
from controller.timefmt import iso

if TYPE_CHECKING:
    from controller.dashboard import Dashboard

PAGE_SIZE = 50
MAX_PAGE = 10**6
OPEN = ("pending", "active", "stopping")
STATUSES = ("pending", "active", "stopping", "completed", "failed")
NOTIFICATION_STATUSES = ("pending", "failed", "delivered")
BACKLOG_ALERT = 100  # pending notifications
DISK_ALERT_BYTES = 500 * 1024 * 1024
SECRET_WORDS = ("key", "secret", "password", "token")
TRIGGERS = {"ocpp1.6": ("BootNotification", "Heartbeat", "MeterValues", "StatusNotification",
                        "DiagnosticsStatusNotification", "FirmwareStatusNotification"),
            "ocpp2.0.1": ("BootNotification", "Heartbeat", "MeterValues", "StatusNotification",
                          "FirmwareStatusNotification", "LogStatusNotification", "TransactionEvent")}


def kw(watts: float | None) -> str:
    return "–" if watts is None else f"{watts / 1000:.2f} kW"


def kwh(wh: float | None, offset: float | None = None) -> str:
    return "–" if wh is None else f"{(wh - (offset or 0)) / 1000:.3f} kWh"


def hidden_secrets(value: Any, name: str = "") -> Any:
    """The config as shown on the about page: API keys, secrets and passwords as dots."""
    if isinstance(value, dict):
        return {k: hidden_secrets(v, k) for k, v in value.items()}
    if any(word in name.lower() for word in SECRET_WORDS) and value:
        return [("•" * 8) for _ in value] if isinstance(value, list) else "•" * 8
    if isinstance(value, list):
        return [hidden_secrets(v, name) for v in value]
    return value


def _date(name: str) -> date | None:
    text = request.args.get(name) or None
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise Problem(422, "InvalidRequest", f"query field {name!r}: a date as YYYY-MM-DD") from None


def transaction_filter() -> TransactionFilter:
    """The transactions page's filters from its query (422 naming a bad one)."""
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in STATUSES:
        raise Problem(422, "InvalidRequest", f"query field 'status': one of {', '.join(STATUSES)}")
    since, until = _date("from"), _date("to")
    return TransactionFilter(
        charger_id=args.get("chargeBoxId") or None, id_tag=args.get("idTag") or None, status=status,
        start_from=_midnight(since) if since else None,
        start_to=_midnight(until + timedelta(days=1)) if until else None)


def _midnight(day: date) -> str:
    """The start of `day` (UTC) as the books write times."""
    return iso(datetime.combine(day, datetime_time(), tzinfo=timezone.utc))


def register(bp: Blueprint, dash: Dashboard) -> None:
    services = dash.services
    chargers, transactions = services.chargers, services.transactions

    @bp.app_template_filter("kw")
    def _kw(watts: float | None) -> str:
        return kw(watts)

    @bp.app_template_filter("kwh")
    def _kwh(wh: float | None, offset: float | None = None) -> str:
        return kwh(wh, offset)

    @bp.context_processor
    async def _common() -> dict[str, Any]:
        session: Session | None = g.get("session")
        return {"session": session, "operator": bool(session and session.operator),
                "site_name": services.config.current.site.name, "version": __version__}

    async def open_transactions() -> dict[tuple[str, int], dict[str, Any]]:
        rows, _ = await transactions.page(TransactionFilter(status="active"), 500)
        stopping, _ = await transactions.page(TransactionFilter(status="stopping"), 500)
        # live energy counts from meterStart on the charger's register; a charge booked from a
        # connector meter (energy_source "meter") shows its booked energy instead
        return {(r["charger_id"], r["connector_id"]): {**transaction_to_api(r, detail=True),
                                                       "liveEnergy": r["energy_source"] != "meter"}
                for r in rows + stopping}

    def disk_free(path) -> int | None:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return None

    async def alerts(charger_list: list[ChargerState]) -> list[str]:
        found = []
        for state in charger_list:
            for c in state.connectors.values():
                if c.error_code not in (None, "NoError"):
                    detail = " ".join(filter(None, (c.info, c.vendor_error_code)))
                    found.append(f"Charger {state.id} connector {c.connector_id}: {c.status} {c.error_code}"
                                 + (f" ({detail})" if detail else ""))
            if state.registration == "pending":
                found.append(f"Charger {state.id} waits for approval")
        for meter in services.hardware.meters.values():
            if not meter.state.online:
                found.append(f"Meter {meter.state.id} is offline" + (f": {meter.state.last_error}"
                                                                      if meter.state.last_error else ""))
        queue = await services.delivery.queue()
        if queue.get("pending", 0) >= BACKLOG_ALERT:
            found.append(f"{queue['pending']} notifications wait for the upstream")
        free = disk_free(services.config.current.data_dir)
        if free is not None and free < DISK_ALERT_BYTES:
            found.append(f"Only {free // (1024 * 1024)} MB free on the data disk")
        return found

    @bp.errorhandler(404)
    async def _not_found(_: Exception) -> tuple[str, int]:
        return await render_template("dashboard/not_found.html", title="Not found"), 404

    @bp.get("/")
    async def overview() -> str:
        charger_list = chargers.all()
        return await render_template(
            "dashboard/overview.html", title="Site",
            chargers=[charger_to_api(s) for s in charger_list if s.registration != "pending"],
            pending=[charger_to_api(s) for s in charger_list if s.registration == "pending"],
            running=await open_transactions(),
            circuits=[circuit_to_api(services.load, services.load.view(c.id))
                      for c in services.load.config.current.circuits],
            meters=[meter_to_api(m.state) for m in services.hardware.meters.values()],
            readers=[reader_to_api(r.state, services.tap_results.get(r.state.id))
                     for r in services.hardware.readers.values()],
            upstream_enabled=services.config.current.upstream.enabled, queue=await services.delivery.queue(),
            alerts=await alerts(charger_list))

    @bp.get("/dashboard/chargers/<charger_id>")
    async def charger_page(charger_id: str) -> str:
        state = chargers.get(charger_id)
        if state is None:
            abort(404)
        running = await open_transactions()
        return await render_template(
            "dashboard/charger.html", title=f"Charger {charger_id}", charger=charger_to_api(state),
            running={n: tx for (cid, n), tx in running.items() if cid == charger_id},
            connector_ids=list(state.connector_ids(charging=True)), frames=dash.frames.of(charger_id),
            frame_logged=bool({"*", charger_id} & set(services.config.current.logging.frame_log)),
            triggers=TRIGGERS.get(state.protocol, TRIGGERS["ocpp1.6"]), v16=state.protocol == "ocpp1.6")

    @bp.get("/dashboard/transactions")
    async def transactions_page() -> str:
        f = transaction_filter()
        text = request.args.get("page", "1")
        page = min(MAX_PAGE, max(1, int(text))) if text.isdecimal() and len(text) < 10 else 1
        rows, total = await transactions.page(f, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        query = {k: v for k, v in request.args.items() if k != "page" and v}
        return await render_template(
            "dashboard/transactions.html", title="Transactions", rows=[transaction_to_api(r, False) for r in rows],
            total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)), query=query, statuses=STATUSES,
            charger_ids=[s.id for s in chargers.all()])

    @bp.get("/dashboard/transactions.csv")
    async def transactions_csv() -> Response:
        """The API's export (GET /api/v1/transactions.csv) of the page's filtered list."""
        zone = services.config.current.site.zone()
        response = Response(csv_lines(transactions.each(transaction_filter()), zone), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="transactions.csv"'
        return response

    @bp.get("/dashboard/transactions/<transaction_id>")
    async def transaction_page(transaction_id: str) -> str:
        try:
            row = await transactions.get(int_param("transactionId", transaction_id))
        except NotFound:
            abort(404)
        samples, _ = await transactions.meter_values(row["id"], -1, 0)
        return await render_template(
            "dashboard/transaction.html", title=f"Transaction {row['id']}", tx=transaction_to_api(row, True),
            curve=chart.curve(samples, row["meter_start"]), width=chart.WIDTH, height=chart.HEIGHT)

    @bp.get("/dashboard/id-tags")
    async def id_tags_page() -> str:
        tags = sorted(services.authorization.tags.values(), key=lambda t: t.id_tag)
        return await render_template(
            "dashboard/id_tags.html", title="Id tags", tags=[id_tag_to_api(t) for t in tags],
            readers=[r.state.id for r in services.hardware.readers.values()])

    @bp.get("/dashboard/hardware")
    async def hardware_page() -> str:
        return await render_template(
            "dashboard/hardware.html", title="Meters and readers",
            meters=[meter_to_api(m.state) for m in services.hardware.meters.values()],
            readers=[reader_to_api(r.state, services.tap_results.get(r.state.id))
                     for r in services.hardware.readers.values()])

    @bp.get("/dashboard/notifications")
    async def notifications_page() -> str:
        status = request.args.get("status") or None
        if status not in (None, *NOTIFICATION_STATUSES):
            raise Problem(422, "InvalidRequest", f"query field 'status': one of {', '.join(NOTIFICATION_STATUSES)}")
        rows, total = await services.delivery.notifications(status, None, None, PAGE_SIZE, 0)
        return await render_template(
            "dashboard/notifications.html", title="Notifications", rows=[notification_to_api(r) for r in rows],
            total=total, queue=await services.delivery.queue(), status=status, statuses=NOTIFICATION_STATUSES,
            upstream_enabled=services.config.current.upstream.enabled)

    @bp.get("/dashboard/public-sessions")
    async def public_sessions_page() -> str:
        found = await services.public_charging.admin_page(None, PAGE_SIZE, 0)
        return await render_template(
            "dashboard/public_sessions.html", title="Public charging", sessions=found["sessions"],
            total=found["pagination"]["total"], enabled=services.config.current.public_charging.enabled)

    @bp.get("/dashboard/about")
    async def about_page() -> str:
        config = services.config.current
        free = disk_free(config.data_dir)
        return await render_template(
            "dashboard/about.html", title="About", uptime_s=int(time.monotonic() - dash.started),
            config_file=str(config.source) if config.source else "(built in)",
            config_text=_pretty(hidden_secrets(config.model_dump(mode="json"))),
            db_path=str(dash.store.path), db_bytes=database_bytes(dash.store.path),
            disk_free=free, watchers=dash.changes.watchers)

    @bp.get("/dashboard/events")
    async def events() -> Response:
        response = Response(_events(dash.changes), content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = None  # open for as long as the page is
        return response


async def _events(changes: Changes):
    with changes.subscribe() as subscription:
        async for chunk in live.stream(subscription):
            yield chunk


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
