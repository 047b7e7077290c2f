"""The installer commands, run as real `evedge` processes against a live in-process site."""

from __future__ import annotations

import json
from pathlib import Path

import trio

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
