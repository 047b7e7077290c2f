"""`evedge demo`: a scripted day at a small site, with no hardware.

Starts the controller on a temporary config and data directory together with simulated chargers
(the independent OCPP chargers in subprocesses: two OCPP 1.6J, one OCPP 2.0.1), an emulated SDM630 grid meter on
Modbus TCP and an emulated RDM6300 card reader on a pseudo-terminal, then plays a day: a driver
plugs in and taps a card, charges, taps again to stop; an operator starts and stops a charge over
the REST API; in the evening three cars share the site's 40 A connection, the building's base
load jumps and the chargers give way (load management: the grid meter reads the base load plus
what the simulated cars draw, and the cars follow the limits evedge sends); at night an OCPP 2.0.1
station charges a car over the API. Every step is printed
as it happens.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
import trio

from controller.config import load_config
from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.charger_process import SimulatedCharger
from controller.simulators.meter import MeterServer, SimulatedMeter
from controller.simulators.site_meter import SimulatedSiteMeter

API_KEY = "demo"
CARD_UID = bytes.fromhex("0A1B2C3D4E")
CARD_TAG = CARD_UID.hex().upper()  # the reader's default id-tag format: hex of the whole UID
REPEAT_WINDOW_S = 1.0  # a card held longer than this on the reader is a new tap
FUSE_A = 40  # the site's connection, per phase

CONFIG = """\
[site]
name = "Demo car park"
data_dir = "data"

[ocpp]
listen = "127.0.0.1:0"
unknown_chargers = "reject"
remote_start_timeout_s = 60

[api]
listen = "127.0.0.1:0"
api_keys = ["{api_key}"]

[logging]
level = "{log_level}"

[[chargers]]
id = "DEMO-1"
connectors = 2
circuit = "main"

[[chargers]]
id = "DEMO-2"
connectors = 1
circuit = "main"

[[chargers]]
id = "DEMO-3"
connectors = 1

[[circuits]]
id = "main"
max_current_a = {fuse_a}
margin_a = 2
meter = "grid"
meter_timeout_s = 3

[load_management]
interval_s = 0.25
increase_delay_s = 2
car_response_s = 1

[[buses]]
id = "gateway"
kind = "tcp"
host = "127.0.0.1"
port = {meter_port}

[[meters]]
id = "grid"
bus = "gateway"
model = "sdm630"
device_id = 1
poll_s = 0.5
role = "site"

[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "{reader_path}"
charger = "DEMO-1"
connector = 1
repeat_window_s = {repeat_window_s}
"""


class Narrator:
    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self.started = trio.current_time()

    def __call__(self, who: str, text: str) -> None:
        elapsed = trio.current_time() - self.started
        print(f"[{elapsed:5.1f}s] {who:<10} {text}", file=self.out, flush=True)


async def run_demo(pace: float = 1.0, verbose: bool = False) -> int:
    """Play the scripted day; returns the process exit code (0 when every step worked)."""
    from controller import logs
    from controller.site import Site

    say = Narrator()
    with tempfile.TemporaryDirectory(prefix="evedge-demo-") as tmp, \
            MeterServer(SimulatedMeter("sdm630", energy_import_wh=12_345_000, power_w=1500,
                                       voltage_v=[231, 230, 229])) as meter_server, \
            Rdm6300Emulator() as reader:
        config_path = Path(tmp) / "site.toml"
        config_path.write_text(CONFIG.format(api_key=API_KEY, meter_port=meter_server.port,
                                             reader_path=reader.path, repeat_window_s=REPEAT_WINDOW_S,
                                             log_level="info" if verbose else "warning", fuse_a=FUSE_A))
        config = load_config(config_path)
        logs.setup(config.logging.level)
        meter = next(iter(meter_server.devices.values()))
        grid = SimulatedSiteMeter(meter, base_a=(6, 6, 6))  # the building, plus whatever the cars draw
        site = Site(config)
        async with trio.open_nursery() as nursery:
            await nursery.start(site.run)
            say("evedge", f"controller up: OCPP on port {site.ocpp_port}, API on port {site.api_port}")
            say("evedge", f"dashboard: http://127.0.0.1:{site.api_port}/ (sign in with the API key {API_KEY!r})")
            api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{site.api_port}/api/v1",
                                    headers={"X-API-Key": API_KEY}, timeout=30)
            try:
                await _day(site, api, nursery, meter, grid, reader, say, pace)
            finally:
                await api.aclose()
                await site.shutdown()
    return 0


async def _day(site, api: httpx.AsyncClient, nursery: trio.Nursery, meter: SimulatedMeter, grid: SimulatedSiteMeter,
               reader: Rdm6300Emulator, say: Narrator, pace: float) -> None:
    url = f"ws://127.0.0.1:{site.ocpp_port}/ocpp"
    one = grid.add(await SimulatedCharger.start(nursery, f"{url}/DEMO-1", connectors=2, ramp_s=0.3))
    two = grid.add(await SimulatedCharger.start(nursery, f"{url}/DEMO-2", connectors=1, ramp_s=0.3))
    try:
        for name, charger, connectors in (("DEMO-1", one, 2), ("DEMO-2", two, 1)):
            answer = await charger.boot(vendor="Demo", model="Wallbox")
            say(name, f"booted, controller says {answer['status']} (heartbeat every {answer['interval']} s)")
            for n in range(connectors + 1):
                await charger.status(n, "Available")
        await trio.sleep(pace)

        (await api.post("/id-tags", json={"idTag": CARD_TAG, "status": "Accepted"})).raise_for_status()
        say("operator", f"added card {CARD_TAG} to the local list over the API")

        # Morning: a driver plugs in and taps a card at bay 1.
        await one.status(1, "Preparing")
        say("DEMO-1", "car plugged in on connector 1 (Preparing)")
        await trio.sleep(pace)
        reader.present(CARD_UID)
        say("bay-1", f"card {CARD_TAG} tapped")
        started = await one.next_event("sent", action="StartTransaction", timeout=15)
        tx = started["response"]["transactionId"]
        say("DEMO-1", f"charging: transaction {tx} started by the card")
        energy = started["request"]["meterStart"]
        for _ in range(4):
            await trio.sleep(pace)
            energy += 1800
            meter.set(energy_import_wh=12_345_000 + energy)
            await one.meter(1, energyWh=energy, powerW=7200)
            detail = (await api.get(f"/transactions/{tx}")).json()
            reading = (await api.get("/meters/grid")).json()
            say("DEMO-1", f"meter {energy} Wh: {detail['energyDelivered']} kWh delivered; "
                          f"grid meter reads {reading.get('powerW')} W")
        await trio.sleep(REPEAT_WINDOW_S * 1.2)  # the card was taken away in between
        reader.present(CARD_UID)
        say("bay-1", f"card {CARD_TAG} tapped again")
        await one.next_event("sent", action="StopTransaction", timeout=15)
        await one.status(1, "Finishing")
        detail = (await api.get(f"/transactions/{tx}")).json()
        say("DEMO-1", f"transaction {tx} {detail['status']}: {detail['energyDelivered']} kWh")

        # Afternoon: an operator starts a charge on DEMO-2 over the REST API.
        await two.status(1, "Preparing")
        say("DEMO-2", "car plugged in on connector 1 (Preparing)")
        response = await api.post("/chargers/DEMO-2/remote-start", json={"connectorId": 1, "idTag": "FLEET-7"})
        say("operator", f"POST remote-start -> {response.status_code} {response.json()['status']}")
        response.raise_for_status()
        tx2 = response.json()["transactionId"]
        await two.next_event("sent", action="StartTransaction", timeout=15)
        say("DEMO-2", f"charging: transaction {tx2}")
        for kwh in (2, 5, 9):
            await trio.sleep(pace)
            await two.meter(1, energyWh=kwh * 1000, powerW=11000)
            say("DEMO-2", f"meter {kwh * 1000} Wh")
        response = await api.post(f"/transactions/{tx2}/stop")
        say("operator", f"POST stop -> {response.status_code} {response.json()['status']}")
        await two.next_event("sent", action="StopTransaction", timeout=15)
        await trio.sleep(0.2)

        listing = (await api.get("/transactions")).json()
        say("evedge", f"{listing['pagination']['total']} transactions on the books:")
        for t in listing["transactions"]:
            say("evedge", f"  {t['id']} {t['chargeBoxId']}/{t['connectorId']} {t['idTag']:<12} "
                          f"{t['status']:<9} {t['energyDelivered']} kWh")

        await _evening(api, one, two, grid, say, pace)
        await _ocpp201(api, nursery, url, say, pace)
    finally:
        await one.aclose()
        await two.aclose()


async def _ocpp201(api: httpx.AsyncClient, nursery: trio.Nursery, url: str, say: Narrator, pace: float) -> None:
    """Night: an OCPP 2.0.1 station (DEMO-3) on the same listener, started and stopped over the API."""
    station = await SimulatedCharger.start(nursery, f"{url}/DEMO-3", connectors=1, version="2.0.1")
    try:
        answer = await station.boot(vendor="Demo", model="DC")
        say("DEMO-3", f"OCPP 2.0.1: booted, controller says {answer['status']}")
        await station.status(1, "Occupied")
        say("DEMO-3", "car plugged in on EVSE 1 (Occupied)")
        response = await api.post("/chargers/DEMO-3/remote-start", json={"connectorId": 1, "idTag": "FLEET-7"})
        response.raise_for_status()
        tx = response.json()["transactionId"]
        await station.next_event("sent", action="TransactionEvent", timeout=15)
        station_tx = (await api.get(f"/transactions/{tx}")).json()["ocppTransactionId"]
        say("DEMO-3", f"charging: transaction {tx} (the station calls it {station_tx})")
        for kwh in (10, 25):
            await trio.sleep(pace)
            await station.meter(1, energyWh=kwh * 1000, powerW=50_000)
            say("DEMO-3", f"meter {kwh * 1000} Wh")
        await api.post(f"/transactions/{tx}/stop")
        await station.next_event(lambda e: e.get("event") == "sent" and e.get("action") == "TransactionEvent"
                                 and e["request"]["eventType"] == "Ended", timeout=15)
        detail = (await api.get(f"/transactions/{tx}")).json()
        say("DEMO-3", f"transaction {tx} {detail['status']}: {detail['energyDelivered']} kWh")
    finally:
        await station.aclose()


async def _evening(api: httpx.AsyncClient, one: SimulatedCharger, two: SimulatedCharger, grid: SimulatedSiteMeter,
                   say: Narrator, pace: float) -> None:
    """Load management: three cars share the connection; a base-load spike; the chargers give way."""
    charges = [(one, "DEMO-1", 1), (one, "DEMO-1", 2), (two, "DEMO-2", 1)]
    say("grid", f"evening: the building draws {grid.base_a[0]:g} A per phase of the site's {FUSE_A} A")
    for charger in (one, two):
        await charger.autometer(0.5)  # MeterValues with the current per phase, as real chargers send
    for charger, name, connector in charges:
        await charger.status(connector, "Preparing")
        await charger.start(connector=connector, idTag=CARD_TAG)
        await charger.status(connector, "Charging")
        say(name, f"car plugged in and charging on connector {connector}")
        await trio.sleep(pace / 2)

    async def shares(want) -> list[dict]:
        """Wait until the circuit's shares satisfy `want`, and the cars draw what they are given."""
        connectors: list[dict] = []
        with trio.move_on_after(30):
            while True:
                connectors = (await api.get("/circuits/main")).json()["connectors"]
                given = {(c["chargeBoxId"], c["connectorId"]): c["allocatedA"] for c in connectors}
                drawn = all(abs(ch.drawn(n) - (given.get((name, n)) or 0)) < 0.05 for ch, name, n in charges)
                if len(connectors) == len(charges) and want(connectors) and drawn:
                    return connectors
                await trio.sleep(0.1)
        raise RuntimeError(f"load management did not settle: {connectors}")

    def show(connectors: list[dict]) -> str:
        parts = [f"{c['chargeBoxId']}/{c['connectorId']} {c['allocatedA']:g} A ({c['reason']})" for c in connectors]
        return ", ".join(parts) + f"; grid meter {max(grid.net_a()):.0f} A of {FUSE_A} A"

    def even(cs: list[dict]) -> bool:  # (40 A - 2 A margin - 6 A base load) / 3 cars, in whole amps
        return all(c["reason"] == "fair share" and c["allocatedA"] == 10 for c in cs)

    fair = await shares(even)
    say("evedge", "sharing: " + show(fair))
    await trio.sleep(pace)
    grid.set_base(22, 22, 22)
    say("grid", "base load jumps to 22 A per phase: the kitchen's ovens switch on")
    # 40 - 2 - 22 = 16 A: two cars at 8 A; not enough for the third at 6 A
    spike = await shares(lambda cs: sorted(c["allocatedA"] for c in cs) == [0, 8, 8])
    say("evedge", "chargers give way: " + show(spike))
    await trio.sleep(pace)
    grid.set_base(6, 6, 6)
    say("grid", "base load back to 6 A per phase")
    back = await shares(even)
    say("evedge", "back up (increases wait, reductions never do): " + show(back))
    for charger, name, connector in charges:
        await charger.stop(connector)
        await charger.status(connector, "Finishing")
    say("evedge", "evening charges stopped")
