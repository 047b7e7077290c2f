"""schemathesis against /api/v1/openapi.json of a live controller (a real `evedge run` subprocess).

Every documented operation gets generated requests, valid ones and (where the document leaves room
for them) invalid ones, sent with an operator key; no answer may be a 5xx, and every answer must
match the document: a documented status, the documented content type, a body matching the schema.
A second pass with a read-only key proves the document's 403s. The site has data first (a charger
that booted, charged and left; id tags; notifications waiting for an unreachable upstream), so the
200 answers carry real bodies, not only empty lists.

Bounded and deterministic: a few examples per operation, derandomized, no example database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis.errors
import pytest
import requests
import schemathesis
import trio
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from controller.simulators.charger_process import SimulatedCharger
from tests.support import API_KEY, CHARGER, PROJECT_ROOT, config_text

READ_ONLY_KEY = "contract-read-only-key"
READY = re.compile(r"ready: ocpp_port=(\d+) api_port=(\d+)")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
OPERATOR_PASS = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}  # examples per operation
READ_ONLY_PASS = {GenerationMode.POSITIVE: 5}
SITE_EXTRA = """
[public_charging]
enabled = true
payment_provider = "none"

[upstream]
start_url = "http://127.0.0.1:9/start"
stop_url = "http://127.0.0.1:9/stop"
status_url = "http://127.0.0.1:9/status"
connection_url = "http://127.0.0.1:9/connection"
retry_initial_s = 0.05
retry_max_s = 1
timeout_s = 1

[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[meters]]
id = "grid"
bus = "gw"
model = "sdm630"

[[readers]]
id = "door"
kind = "modbus"
bus = "gw"
device_id = 9

[[circuits]]
id = "main"
max_current_a = 63
meter = "grid"
"""


@dataclass
class Controller:
    process: subprocess.Popen
    base: str
    ocpp_port: int
    log: Path


def _site_toml(tmp: Path) -> str:
    text = config_text(tmp / "data", unknown_chargers="pending", call_timeout_s=2, extra=SITE_EXTRA)
    text = text.replace(f'api_keys = ["{API_KEY}"]',
                        f'api_keys = ["{API_KEY}"]\nread_only_api_keys = ["{READ_ONLY_KEY}"]')
    # a public code on the first charger, so the driver's endpoints have something to find
    return text.replace('connectors = 2\n', 'connectors = 2\npublic_code = "A1B2"\npricing = { currency = "EUR",'
                                            ' price_per_kwh = 39, amount_authorized = 5000 }\n', 1)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    tmp = tmp_path_factory.mktemp("contract")
    config = tmp / "site.toml"
    config.write_text(_site_toml(tmp), encoding="utf-8")
    log = tmp / "controller.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT))
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "controller", "run", "--config", str(config)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(PROJECT_ROOT))
    try:
        deadline = time.monotonic() + 30  # a bound against a hang, not a performance claim
        while (found := READY.search(log.read_text(errors="replace"))) is None:
            assert process.poll() is None, f"the controller exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the controller never got ready:\n{log.read_text()}"
            time.sleep(0.05)
        running = Controller(process, f"http://127.0.0.1:{found[2]}", int(found[1]), log)
        trio.run(_seed, running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _seed(running: Controller) -> None:
    """Data for the 200 answers: a completed and an active transaction, meter values, statuses,
    id tags, notifications for the (unreachable) upstream. The charger leaves again, so operations
    that need it answer 409 deterministically."""
    async with SimulatedCharger.open(f"ws://127.0.0.1:{running.ocpp_port}/ocpp/{CHARGER}", connectors=2) as sim:
        await sim.boot()
        await sim.status(1, "Preparing")
        await sim.start_transaction(1, "TAG-1")
        await sim.meter(1, 1500.0)
        await sim.stop(1)
        await sim.start_transaction(2, "TAG-2")
        await sim.meter(2, 250.0)
    with requests.Session() as http:
        http.headers["X-API-Key"] = API_KEY
        for body in ({"idTag": "TAG-1"}, {"idTag": "CHILD", "status": "Blocked", "parentIdTag": "TAG-1",
                                          "expiryDate": "2030-01-01T00:00:00Z"}):
            assert http.post(running.base + "/api/v1/id-tags", json=body, timeout=10).status_code == 201
        listing = http.get(running.base + "/api/v1/transactions", timeout=10).json()
        assert listing["pagination"]["total"] == 2, listing
        deadline = time.monotonic() + 10  # events are queued as they happen; a bound, not a claim
        while http.get(running.base + "/api/v1/notifications", timeout=10).json()["pagination"]["total"] < 4:
            assert time.monotonic() < deadline, "the notifications were never queued"
            time.sleep(0.05)


def _run(controller: Controller, key: str, examples: dict[GenerationMode, int]) -> tuple[dict[str, str], int]:
    """Every operation in each mode; returns {label: failure} and the number of calls made."""
    schema = schemathesis.openapi.from_url(controller.base + "/api/v1/openapi.json")
    failures: dict[str, str] = {}
    calls = 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, count in examples.items():

                @settings(max_examples=count, derandomize=True, database=None, deadline=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                          print_blob=False)
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: schemathesis.Case) -> None:
                    nonlocal calls
                    calls += 1
                    case.call_and_validate(base_url=controller.base, session=session, headers={"X-API-Key": key},
                                           checks=CHECKS, timeout=15)

                try:
                    check()
                except hypothesis.errors.Unsatisfiable:
                    pass  # nothing to make invalid (no parameters, or an unconstrained string)
                except Exception as exc:  # noqa: BLE001 - every failure is reported, not just the first
                    failures[f"{operation.label} ({mode.value})"] = "".join(traceback.format_exception(exc))[-3000:]
    return failures, calls


def _server_errors(controller: Controller) -> list[str]:
    return [line for line in controller.log.read_text(errors="replace").splitlines() if "API request failed" in line]


def test_every_answer_matches_the_document(controller: Controller) -> None:
    failures, calls = _run(controller, API_KEY, OPERATOR_PASS)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert calls > 300  # really exercised: every operation, both modes
    assert not _server_errors(controller)
    assert controller.process.poll() is None


def test_read_only_key_answers_match_the_document(controller: Controller) -> None:
    """GETs work with a read-only key; everything else answers the documented 403."""
    failures, _ = _run(controller, READ_ONLY_KEY, READ_ONLY_PASS)
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    with requests.Session() as http:
        http.headers["X-API-Key"] = READ_ONLY_KEY
        assert http.get(controller.base + "/api/v1/transactions", timeout=10).status_code == 200
        refused = http.post(controller.base + "/api/v1/id-tags", json={"idTag": "RO"}, timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"
        assert http.get(controller.base + "/api/v1/id-tags/RO", timeout=10).status_code == 404
    assert not _server_errors(controller)
