"""The installer commands, run as real `evedge` processes against a live in-process site."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.meter import MeterServer, SimulatedMeter
from tests.support import eventually

from .conftest import charger, evedge, running_site, write_config


async def test_installer_commands_against_a_live_controller(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    async with running_site(write_config(tmp_path / "site")) as site:
        url = f"http://127.0.0.1:{site.api_port}"
        api = ("--url", url, "--api-key", "test-key")
        # --config finds the API from [api] listen and the first key
        cli_config = write_config(tmp_path, api_keys=("test-key", "other"))
        cli_config.write_text(cli_config.read_text().replace(
            '[api]\nlisten = "127.0.0.1:0"', f'[api]\nlisten = "0.0.0.0:{site.api_port}"'))

        rc, out, err = await evedge("tags", "add", "CARD-1", "--parent", "FLEET", "--config", str(cli_config))
        assert rc == 0, err
        assert out.splitlines()[0].split() == ["ID", "TAG", "STATUS", "EXPIRY", "PARENT"]
        assert out.splitlines()[1].split() == ["CARD-1", "Accepted", "-", "FLEET"]

        rc, out, err = await evedge("tags", "block", "CARD-1", *api)
        assert rc == 0, err
        assert "Blocked" in out and "FLEET" in out  # the parent is kept

        csv_file = tmp_path / "cards.csv"
        csv_file.write_text("idTag,status,expiryDate,parentIdTag\nCARD-2,,,FLEET\nCARD-3,Blocked\nCARD-4,Nope\n")
        rc, out, err = await evedge("tags", "import", str(csv_file), *api)
        assert rc == 1  # one row refused
        assert "imported 2 id tags" in out and "CARD-4" in out
        assert "1 rows" in err

        rc, out, err = await evedge("tags", "list", "--json", env={"EVEDGE_URL": url, "EVEDGE_API_KEY": "test-key"})
        assert rc == 0, err
        tags = {t["idTag"]: t for t in json.loads(out)["idTags"]}
        assert tags.keys() == {"CARD-1", "CARD-2", "CARD-3"}
        assert tags["CARD-1"]["status"] == "Blocked" and tags["CARD-2"]["parentIdTag"] == "FLEET"

        async with charger(site.ocpp_port, "CP1") as cp:
            await cp.boot()
            await cp.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
            rc, out, err = await evedge("chargers", *api)
            assert rc == 0, err
            rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
            assert rows["CP1"][:3] == ["CP1", "accepted", "yes"] and "1:Available" in rows["CP1"]
            assert rows["CP2"][:3] == ["CP2", "accepted", "no"]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cp.answer_one, {"status": "Accepted"})
                rc, out, err = await evedge("operations", "send", "CP1", "TriggerMessage",
                                            '{"requestedMessage": "Heartbeat"}', "--json", *api)
            assert rc == 0, err
            assert json.loads(out) == {"status": "Accepted"}

        rc, out, err = await evedge("operations", "send", "CP2", "Reset", '{"type": "Soft"}', *api)
        assert rc == 1 and "ChargerOffline" in err

        rc, out, err = await evedge("transactions", "list", "--json", *api)
        assert rc == 0, err
        assert json.loads(out)["transactions"] == []
        rc, out, err = await evedge("transactions", "show", "999", *api)
        assert rc == 1 and "TransactionNotFound" in err

        rc, out, err = await evedge("notifications", "list", *api)
        assert rc == 0, err
        assert "queue: pending=0" in out

        rc, out, err = await evedge("tags", "list", "--url", url, "--api-key", "wrong")
        assert rc == 1 and "401" in err


async def test_unreachable_controller_and_missing_config_have_their_own_exit_codes(tmp_path: Path) -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc, _, err = await evedge("chargers", "--url", f"http://127.0.0.1:{port}")
    assert rc == 3 and "cannot reach" in err
    rc, _, err = await evedge("chargers", "--config", str(tmp_path / "missing.toml"))
    assert rc == 2 and "cannot read" in err
    rc, out, _ = await evedge("operations", "list")
    assert rc == 0 and "RemoteStartTransaction" in out.split()


async def test_tag_commands_change_one_field_and_export_what_import_reads(tmp_path: Path) -> None:
    async with running_site(write_config(tmp_path)) as site:
        api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", "test-key")

        async def tag(*args: str) -> list[str]:
            rc, out, err = await evedge("tags", *args, *api)
            assert rc == 0, err
            return out.splitlines()[1].split()

        assert await tag("add", "CARD-1", "--parent", "FLEET", "--expiry", "2030-01-01T00:00:00Z") == [
            "CARD-1", "Accepted", "2030-01-01T00:00:00.000Z", "FLEET"]
        # one field changes, the others stay (a PATCH, not a PUT)
        assert await tag("block", "CARD-1") == ["CARD-1", "Blocked", "2030-01-01T00:00:00.000Z", "FLEET"]
        assert await tag("unblock", "CARD-1") == ["CARD-1", "Accepted", "2030-01-01T00:00:00.000Z", "FLEET"]
        assert await tag("set", "CARD-1", "--status", "Expired", "--parent", "none") == [
            "CARD-1", "Expired", "2030-01-01T00:00:00.000Z", "-"]
        rc, _, err = await evedge("tags", "set", "CARD-1", *api)
        assert rc == 2 and "nothing to change" in err
        await tag("add", "CARD-2", "--parent", "FLEET")

        exported = tmp_path / "cards.csv"
        rc, _, err = await evedge("tags", "export", str(exported), *api)
        assert rc == 0 and "exported 2 id tags" in err, err
        assert exported.read_text() == ("idTag,status,expiryDate,parentIdTag\n"
                                        "CARD-1,Expired,2030-01-01T00:00:00.000Z,\nCARD-2,Accepted,,FLEET\n")
        rc, out, _ = await evedge("tags", "export", *api)
        assert rc == 0 and out == exported.read_text()

        rc, out, err = await evedge("tags", "delete", "CARD-1", *api)
        assert rc == 0 and "deleted id tag CARD-1" in out, err
        rc, _, err = await evedge("tags", "delete", "CARD-1", *api)
        assert rc == 1 and "IdTagNotFound" in err
        rc, out, err = await evedge("tags", "import", str(exported), *api)
        assert rc == 0 and "imported 2 id tags" in out, err
        rc, out, _ = await evedge("tags", "export", *api)
        assert out == exported.read_text()  # the round trip is lossless


async def test_chargers_approve_brings_a_pending_charger_up_at_once_and_reject_refuses_it(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("[ocpp]\n", '[ocpp]\nunknown_chargers = "pending"\n'))
    async with running_site(config) as site:
        api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", "test-key")
        boots = {"ocpp1.6": {"chargePointVendor": "Acme", "chargePointModel": "X1"},
                 "ocpp2.0.1": {"reason": "PowerUp", "chargingStation": {"model": "X2", "vendorName": "Acme"}}}
        for protocol, boot in boots.items():
            name = f"NEW-{protocol[4:]}"
            async with charger(site.ocpp_port, name, protocol) as cp:
                assert (await cp.call("BootNotification", boot))[2]["status"] == "Pending"
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cp.answer_one, {"status": "Accepted"})
                    rc, out, err = await evedge("chargers", "approve", name, *api)
                assert rc == 0, err
                assert out.splitlines()[1].split()[:3] == [name, "accepted", "yes"]
                assert cp.answered[-1][2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
                assert (await cp.call("BootNotification", boot))[2]["status"] == "Accepted"  # at once

        async with charger(site.ocpp_port, "NEW-1.6") as cp:
            rc, out, err = await evedge("chargers", "reject", "NEW-1.6", *api)
            assert rc == 0 and out.splitlines()[1].split()[:2] == ["NEW-1.6", "rejected"], err
        rc, _, err = await evedge("chargers", "reject", "CP1", *api)
        assert rc == 1 and "ChargerConfigured" in err
        rc, _, err = await evedge("chargers", "approve", "NOBODY", *api)
        assert rc == 1 and "ChargerNotFound" in err
        rc, out, _ = await evedge("chargers", "--json", *api)
        registrations = {c["chargeBoxId"]: c["registration"] for c in json.loads(out)["chargers"]}
        assert registrations == {"CP1": "accepted", "CP2": "accepted", "NEW-1.6": "rejected", "NEW-2.0.1": "accepted"}


async def test_meters_and_readers_commands_show_the_site_hardware(tmp_path: Path) -> None:
    """An SDM630 behind a Modbus TCP gateway and an RDM6300 card reader on a serial port (both
    emulated), listed by `evedge meters` and `evedge readers` after a card was tapped."""
    meter = SimulatedMeter("sdm630", device_id=1, energy_import_wh=12_345_000, power_w=7200)
    with MeterServer(meter, "tcp") as gateway, Rdm6300Emulator() as reader:
        hardware = (f'[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {gateway.port}\ntimeout_s = 0.5\n'
                    '[[meters]]\nid = "grid"\nbus = "gw"\nmodel = "sdm630"\npoll_s = 0.1\n'
                    f'[[readers]]\nid = "bay-1"\nkind = "rdm6300"\nport = "{reader.path}"\ncharger = "CP1"\n'
                    "connector = 1\n")
        async with running_site(write_config(tmp_path, chargers=("CP1",), extra=hardware)) as site:
            api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", "test-key")
            await eventually(lambda: site.hardware.meters["grid"].state.online, what="meter polled")
            await eventually(lambda: site.hardware.readers["bay-1"].state.connected, what="reader open")
            reader.present(bytes.fromhex("62E3086CED"), repeats=1)
            await eventually(lambda: site.tap_to_charge.results.get("bay-1"), what="tap handled")

            rc, out, err = await evedge("meters", *api)
            assert rc == 0, err
            header, row = out.splitlines()
            assert header.split()[:4] == ["METER", "MODEL", "BUS", "ON"]
            assert row.split()[:7] == ["grid", "sdm630", "gw", "site", "yes", "7200.0", "12345.0"], row
            rc, out, err = await evedge("readers", "list", "--json", *api)
            assert rc == 0, err
            (listed,) = json.loads(out)["readers"]
            assert listed["id"] == "bay-1" and listed["taps"] == 1 and listed["lastIdTag"] == "62E3086CED"
            rc, out, err = await evedge("readers", *api)
            row = out.splitlines()[1].split()
            assert row[:5] == ["bay-1", "rdm6300", "CP1:1", "yes", "1"] and "62E3086CED" in row, out
            assert listed["lastTapResult"]["result"] in row  # what the tap did (an unknown card: refused)


async def test_profile_commands_store_list_and_clear(tmp_path: Path) -> None:
    async with running_site(write_config(tmp_path)) as site:
        api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", "test-key")
        profile = {"chargingProfileId": 2001, "stackLevel": 1, "chargingProfilePurpose": "ChargePointMaxProfile",
                   "chargingProfileKind": "Absolute",
                   "chargingSchedule": {"chargingRateUnit": "A",
                                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}
        (tmp_path / "cap.json").write_text(json.dumps(profile))
        rc, out, err = await evedge("profiles", "set", "CP1", "0", f"@{tmp_path / 'cap.json'}", *api)
        assert rc == 0, err
        assert out.splitlines()[1].split()[:5] == ["2001", "0", "ChargePointMaxProfile", "1", "pending"]
        rc, out, err = await evedge("profiles", "list", "CP1", *api)
        assert rc == 0 and "0s:16A" in out, err
        profile["stackLevel"] = 0
        rc, _, err = await evedge("profiles", "set", "CP1", "0", json.dumps(profile), *api)
        assert rc == 1 and "stackLevel" in err, err  # load management's stack level, refused by the API
        rc, _, err = await evedge("profiles", "clear", "CP1", "2001", *api)
        assert rc == 1 and "not connected" in err, err  # the charger must be there to clear it
        async with charger(site.ocpp_port, "CP1") as cp:
            await cp.boot()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cp.answer_one, {"status": "Accepted"})  # the stored profile, sent after boot
            result: list = []

            async def clear() -> None:
                result.extend(await evedge("profiles", "clear", "CP1", "2001", *api))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(clear)
                call = await cp.answer_one({"status": "Accepted"})
            assert call[2:] == ["ClearChargingProfile", {"id": 2001}]
            assert result[0] == 0 and "answered Accepted" in result[1], result
        rc, out, _ = await evedge("profiles", "list", "CP1", "--json", *api)
        assert rc == 0 and json.loads(out) == {"chargingProfiles": []}
