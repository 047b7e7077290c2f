"""GET /metrics from a live in-process site, read back with prometheus-client's own parser."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from controller import metrics
from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.meter import MeterServer, SimulatedMeter
from drivers import Hardware, ModbusTimeout, Rdm6300ReaderConfig, TcpBusConfig

from .conftest import charger, running_site, write_config


def _samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(client: httpx.AsyncClient) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return _samples(response.text)


def _drivers_toml(bus_port: int, reader_path: str) -> str:
    """A gateway whose only meter stays silent, and a card reader that belongs to no charger."""
    return f"""
[[buses]]
id = "rs485-1"
kind = "tcp"
host = "127.0.0.1"
port = {bus_port}
timeout_s = 0.2
retries = 0

[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "{reader_path}"
"""


async def test_metrics_parse_and_count_what_happened(tmp_path: Path) -> None:
    silent = SimulatedMeter("sdm630", device_id=1)
    silent.silent = True
    with MeterServer(silent, "tcp") as gateway, Rdm6300Emulator() as rdm:
        config = write_config(tmp_path, extra=_drivers_toml(gateway.port, rdm.path))
        async with running_site(config) as site, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{site.api_port}", headers={"X-API-Key": "test-key"}) as client:
            reader = site.hardware.readers["bay-1"]
            with trio.fail_after(10):
                while not reader.state.connected:
                    await trio.sleep(0.01)
            before = await _scrape(client)
            async with charger(site.ocpp_port, "CP1") as cp:
                await _ocpp_traffic(cp, client)
                # the drivers' counters (kept by drivers/, read when scraped): a request that times out, a tap
                with pytest.raises(ModbusTimeout):
                    await site.hardware.buses["rs485-1"].read_registers(1, 4, 0x0000, 2)
                rdm.present(bytes.fromhex("62E3086CED"))
                with trio.fail_after(10):
                    while reader.state.taps < 1:
                        await trio.sleep(0.01)
                after = await _scrape(client)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert _value(after, "evedge_chargers_connected") == 1
    assert _value(after, "evedge_chargers_known", registration="accepted") == 2
    msgs = "evedge_ocpp_messages_total"
    assert delta(msgs, direction="in", action="BootNotification", type="call") == 1
    assert delta(msgs, direction="out", action="BootNotification", type="result") == 1
    assert delta(msgs, direction="in", action="Heartbeat", type="call") == 1
    assert delta(msgs, direction="in", action="other", type="call") == 1
    assert delta(msgs, direction="out", action="other", type="error") == 1
    assert delta(msgs, direction="out", action="TriggerMessage", type="call") == 1
    assert delta(msgs, direction="in", action="TriggerMessage", type="result") == 1
    assert delta(msgs, direction="in", action="Reset", type="error") == 1
    assert delta("evedge_ocpp_callerrors_total", direction="out", code="NotImplemented") == 1
    assert delta("evedge_ocpp_callerrors_total", direction="in", code="NotSupported") == 1
    assert delta("evedge_ocpp_call_duration_seconds_count", direction="out", action="TriggerMessage") == 1
    assert delta("evedge_ocpp_call_duration_seconds_count", direction="in", action="Heartbeat") == 1
    assert delta("evedge_ocpp_call_duration_seconds_bucket", direction="in", action="Heartbeat", le="+Inf") == 1
    assert delta("evedge_modbus_errors_total", bus="rs485-1", kind="timeout") == 1
    assert delta("evedge_modbus_requests_total", bus="rs485-1") == 1
    assert delta("evedge_card_taps_total", reader="bay-1") == 1
    assert _value(after, "evedge_transactions_active") == 0
    assert _value(after, "evedge_outbox_pending") == 0
    assert _value(after, "evedge_outbox_oldest_pending_age_seconds") == 0
    assert ("evedge_event_loop_lag_seconds_count", ()) in after
    assert _value(after, "process_resident_memory_bytes") > 0


async def _ocpp_traffic(cp, client: httpx.AsyncClient) -> None:  # noqa: ANN001 - conftest's Charger
    """A boot, a heartbeat, an unknown action, a call the charger answers and one it refuses."""
    await cp.boot()
    await cp.call("Heartbeat", {})
    assert (await cp.call("NoSuchAction", {}))[0] == 4  # we answer CALLERROR NotImplemented
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cp.answer_one, {"status": "Accepted"})
        answer = await client.post("/api/v1/chargers/CP1/operations/TriggerMessage",
                                   json={"requestedMessage": "Heartbeat"})
        assert answer.status_code == 200, answer.text

    async def refuse_reset() -> None:
        frame = json.loads(await cp.ws.get_message())
        await cp.ws.send_message(json.dumps([4, frame[1], "NotSupported", "", {}]))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(refuse_reset)
        answer = await client.post("/api/v1/chargers/CP1/operations/Reset", json={"type": "Soft"})
        assert answer.status_code == 502


def test_driver_counters_are_added_once_per_event_and_per_process() -> None:
    """Each scrape adds what the drivers counted since the last one; a second site's bus of the
    same name adds to the same series instead of resetting it."""
    def value(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    def build() -> Hardware:
        return Hardware(buses=[TcpBusConfig(id="unit-gw", kind="tcp", host="127.0.0.1", port=1)],
                        readers=[Rdm6300ReaderConfig(kind="rdm6300", id="unit-bay", port="/nonexistent/tty")])

    errors = "evedge_modbus_errors_total"
    first, second = build(), build()
    stats, reader = first.buses["unit-gw"].stats, first.readers["unit-bay"]
    stats.requests, stats.timeouts, stats.device_errors, stats.io_errors = 5, 1, 2, 3
    reader.state.taps = 4
    metrics.collect_drivers(first)
    metrics.collect_drivers(first)  # nothing new: nothing added
    assert value("evedge_modbus_requests_total", bus="unit-gw") == 5
    assert [value(errors, bus="unit-gw", kind=k) for k in ("timeout", "exception", "io")] == [1, 2, 3]
    assert value("evedge_card_taps_total", reader="unit-bay") == 4
    stats.requests += 1
    second.buses["unit-gw"].stats.requests = 2
    second.readers["unit-bay"].state.taps = 1
    metrics.collect_drivers(first)
    metrics.collect_drivers(second)
    assert value("evedge_modbus_requests_total", bus="unit-gw") == 8
    assert value("evedge_card_taps_total", reader="unit-bay") == 5
    assert value(errors, bus="unit-gw", kind="timeout") == 1


async def test_metrics_are_open_by_default_and_can_require_the_api_key(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    open_config = write_config(tmp_path / "open")
    async with running_site(open_config) as site, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{site.api_port}") as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/v1/chargers")).status_code == 401

    (tmp_path / "closed").mkdir()
    closed = write_config(tmp_path / "closed")
    closed.write_text(closed.read_text().replace("[api]\n", "[api]\nmetrics_require_api_key = true\n"))
    async with running_site(closed) as site, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{site.api_port}") as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"X-API-Key": "test-key"})).status_code == 200


async def test_event_loop_lag_is_how_late_the_sleeper_woke(mock_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(metrics.watch_loop_lag, 1.0)
        await trio.testing.wait_all_tasks_blocked()
        # the loop "stalls": the clock moves 1.5 s past the watcher's 1 s deadline before it runs
        mock_clock.jump(2.5)
        await trio.testing.wait_all_tasks_blocked()
        assert metrics.last_loop_lag() == 1.5
        mock_clock.jump(1.0)
        await trio.testing.wait_all_tasks_blocked()
        assert metrics.last_loop_lag() == 0.0
        nursery.cancel_scope.cancel()
