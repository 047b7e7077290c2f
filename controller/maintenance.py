"""Firmware, diagnostics and triggered messages: what an operator asks of a charger's upkeep, and
the history it leaves.

Every request (UpdateFirmware, GetDiagnostics / 2.0.1 GetLog) is stored with the charger's answer,
every status the charger reports afterwards (FirmwareStatusNotification, DiagnosticsStatusNotification,
2.0.1 LogStatusNotification) with its time, and each boot with its firmware version: the history
shows an update being downloaded, installed and then running after the reboot. The request's row
id is the 2.0.1 `requestId`, so a station's statuses name the request they belong to.

A charger that reconnects without booting (a network glitch, not a restart) is asked for its
connector statuses (TriggerMessage StatusNotification): what changed while it was away is seen at
once rather than at its next change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from controller.charger_jobs import SETTLE_S, ChargerJobs
from controller.chargers import ChargerRegistry, ChargerState
from controller.errors import AnswerLost, DomainError, Invalid
from controller.store import Store
from controller.store import charger_reports as q
from controller.timefmt import now_iso

log = logging.getLogger("evedge.maintenance")
FIRMWARE_KINDS = ("firmware-request", "firmware", "boot")
DIAGNOSTICS_KINDS = ("diagnostics-request", "diagnostics", "log")
REFRESH_JOB = "status-refresh"


@dataclass(frozen=True)
class Report:
    id: int
    kind: str  # firmware-request | firmware | boot | diagnostics-request | diagnostics | log
    status: str  # the charger's answer or report; for a boot, the firmware version it booted with
    detail: dict[str, Any] | None
    at: str


def _report(row: Any) -> Report:
    return Report(row["id"], row["kind"], row["status"], orjson.loads(row["detail"]) if row["detail"] else None,
                  row["at"])


class Maintenance:
    def __init__(self, store: Store, chargers: ChargerRegistry, jobs: ChargerJobs) -> None:
        self.store = store
        self.chargers = chargers
        self.jobs = jobs
        chargers.reconnect_listeners.append(self._refresh_soon)

    async def update_firmware(self, charger_id: str, location: str, retrieve_date: str, retries: int | None,
                              retry_interval_s: int | None) -> Report:
        request = {"location": location, "retrieveDate": retrieve_date, "retries": retries,
                   "retryInterval": retry_interval_s}
        return await self._request(charger_id, "firmware-request", request, lambda link, rid: link.update_firmware(
            rid, location, retrieve_date, retries, retry_interval_s))

    async def get_diagnostics(self, charger_id: str, location: str, start: str | None, stop: str | None,
                              retries: int | None, retry_interval_s: int | None) -> Report:
        request = {"location": location, "startTime": start, "stopTime": stop, "retries": retries,
                   "retryInterval": retry_interval_s}
        return await self._request(charger_id, "diagnostics-request", request, lambda link, rid: link.get_diagnostics(
            rid, location, start, stop, retries, retry_interval_s))

    async def _request(self, charger_id: str, kind: str, request: dict, send: Any) -> Report:
        """Store the request, send it, store the answer with it; the stored request either way (its
        status NoAnswer when the answer was lost: the charger may act on it all the same)."""
        link = self.chargers.online_link(charger_id)
        request = {k: v for k, v in request.items() if v is not None}
        at = now_iso()
        report_id = await self.store.write(q.add_report, charger_id, kind, "Requested", orjson.dumps(request).decode(), at)
        try:
            answer = await send(link, report_id)
        except AnswerLost:
            status, detail = "NoAnswer", request
        except Invalid:
            await self.store.write(q.set_report, report_id, "Invalid", orjson.dumps(request).decode())
            raise
        else:
            status = str(answer.get("status") or "Accepted")  # 1.6 answers UpdateFirmware with nothing
            detail = {**request, "answer": answer}
        await self.store.write(q.set_report, report_id, status, orjson.dumps(detail).decode())
        log.info("charger=%s %s: %s", charger_id, kind, status)
        return Report(report_id, kind, status, detail, at)

    async def history(self, charger_id: str, kinds: tuple[str, ...], limit: int, offset: int) -> tuple[list[Report], int]:
        self.chargers.require(charger_id)
        rows, total = await self.store.read(q.reports, charger_id, kinds, limit, offset)
        return [_report(r) for r in rows], total

    async def trigger(self, charger_id: str, message: str, connector_id: int | None) -> str:
        """TriggerMessage: the charger's answer (Accepted, Rejected, NotImplemented)."""
        state = self.chargers.require(charger_id)
        if connector_id is not None and not state.accepts_connector(connector_id):
            raise Invalid(f"connectorId: charger {charger_id} has no connector {connector_id}")
        return await self.chargers.online_link(charger_id).trigger(message, connector_id)

    # -- reconnection -------------------------------------------------------------------------

    def _refresh_soon(self, state: ChargerState) -> None:
        self.jobs.submit(state.id, REFRESH_JOB, lambda: self._refresh(state, state.connected_at), delay_s=SETTLE_S)

    async def _refresh(self, state: ChargerState, connected_at: str | None) -> None:
        """Ask a reconnected charger for its statuses, unless it booted (a boot sends them)."""
        if state.link is None or state.connected_at != connected_at:
            return
        if state.last_boot is not None and connected_at is not None and state.last_boot >= connected_at:
            return
        try:
            answer = await state.link.trigger("StatusNotification")
        except DomainError as exc:
            log.info("charger=%s reconnected; asking for its statuses failed: %s", state.id, exc.message)
            return
        log.info("charger=%s reconnected; asked for its statuses: %s", state.id, answer)
