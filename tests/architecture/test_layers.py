"""The layers of docs/architecture.md, kept true: every import in the source is checked against them.

Imports inside functions and `if TYPE_CHECKING:` blocks count too: a module's imports should tell
what it touches, whenever it touches it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The domain: plain values and typed errors; no protocol, no HTTP, no hardware protocol.
DOMAIN = ("controller.chargers", "controller.transactions", "controller.authorization", "controller.tap_to_charge",
          "controller.errors", "controller.live_config", "controller.public_charging.lifecycle",
          "controller.public_charging.payments", "controller.public_charging.views",
          "controller.public_charging.sessions", "controller.public_charging.statuses",
          "controller.public_charging.money", "controller.upstream.events", "controller.load_management",
          "controller.reservations", "controller.retention", "controller.clock",
          "controller.charger_jobs", "controller.local_list", "controller.charging_profiles", "controller.maintenance",
          "controller.charger_passwords")

# (who, what they must not import, why): `who` and `what` are module-name prefixes.
RULES: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (("drivers",), ("controller",), "drivers/ is a leaf: the controller uses the drivers, never the other way"),
    (DOMAIN, ("controller.csms", "controller.api", "controller.site", "controller.local_controller", "ocpp",
              "jsonschema", "quart", "hypercorn", "trio_websocket", "werkzeug"),
     "the domain speaks no protocol and no HTTP: adapters translate"),
    (("controller.api",), ("controller.csms", "controller.local_controller", "ocpp", "jsonschema"),
     "the REST API reaches chargers through the domain, not through OCPP frames"),
    (("controller.dashboard",), ("controller.csms", "ocpp", "jsonschema"),
     "the dashboard reaches chargers through the domain (the API's services), not through OCPP frames"),
    (("controller.changes",), ("controller", "drivers"),
     "the publisher of live changes is a leaf: the domain publishes through it"),
    (("controller.local_controller",),
     ("controller.api", "controller.csms.server",
      *(f"controller.csms.{v}.{m}" for v in ("v16", "v201") for m in ("handlers", "link", "meter_values",
                                                                        "smart_charging"))),
     "local-controller mode forwards charger calls handed to it through the adapters' hook; it speaks"
     " OCPP upstream with the session and each version's schemas, not through the adapters, the listener"
     " or the REST API"),
    (("controller.csms",), ("controller.local_controller",),
     "the OCPP adapters hand calls on through a hook (adapter.Forward), knowing nothing of who takes them"),
    (("controller.metrics",), ("controller.csms.frames", "controller.csms.v16"),
     "metrics read counters; they do not know a protocol version"),
    (("controller.store",), ("controller.chargers", "controller.transactions", "controller.authorization",
                             "controller.tap_to_charge", "controller.public_charging", "controller.upstream",
                             "controller.csms", "controller.api", "controller.site", "controller.config",
                             "controller.reservations",

                             "controller.local_list", "controller.charging_profiles", "controller.maintenance",
                             "controller.charger_passwords"),
     "the store holds SQL only: it knows rows, not the domain"),
    (("controller.csms.frames", "controller.csms.rpc", "controller.csms.liveness", "controller.csms.security"),
     ("controller.csms.v16", "controller.csms.v201"),
     "framing and the RPC session are version-neutral"),
    (("controller.preflight", "controller.init_site"),
     ("controller.chargers", "controller.transactions", "controller.authorization", "controller.tap_to_charge",
      "controller.public_charging", "controller.csms", "controller.api", "controller.upstream.delivery"),
     "the start-up checks read the config and the machine, not the parts that run"),
    (("controller",), ("controller.site",),
     "site.py is the composition root: it builds the parts, no part reaches back into it"),
]
EXEMPT = ("controller.site", "controller.cli", "controller.demo", "controller.reload", "controller.__main__")
"""Entry points that wire the parts together (they may import anything)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every module `path` imports, absolute, with its line."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:  # `from controller import errors` imports controller.errors
                yield f"{base}.{alias.name}", node.lineno


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def sources() -> list[Path]:
    return sorted(p for top in ("controller", "drivers") for p in (ROOT / top).rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in sources():
        me = module_name(path)
        if under(me, EXEMPT) or under(me, ("controller.simulators",)):
            continue
        for name, line in imports(path):
            for who, banned, why in RULES:
                if under(me, who) and under(name, banned) and not under(name, (me,)):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {name}: {why}")
    return found


def test_no_module_imports_across_its_layer() -> None:
    assert violations() == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules bite: a driver that imports the controller is reported."""
    fake = tmp_path / "drivers" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("from controller import metrics\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "controller").mkdir()
    assert violations() == ["drivers/bad.py:1 imports controller: drivers/ is a leaf: the controller uses "
                            "the drivers, never the other way",
                            "drivers/bad.py:1 imports controller.metrics: drivers/ is a leaf: the controller uses "
                            "the drivers, never the other way"]


def strings(path: Path) -> Iterator[tuple[str, int]]:
    """The string constants of a module that are not docstrings: what the code says, not prose."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and (body := node.body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value, node.lineno


def test_no_ocpp_1_6_words_in_the_domain() -> None:
    """The domain and the store name no 1.6 action, status or payload field in what they do
    (the adapters in controller/csms/ translate)."""
    words = ("RemoteStartTransaction", "RemoteStopTransaction", "StartTransaction", "StopTransaction",
             "meterStart", "meterStop", "transactionData", "chargePointVendor", "chargePointModel",
             "idTagInfo", "sampledValue", "SetChargingProfile", "Preparing", "SuspendedEV")
    found = []
    for path in sources():
        me = module_name(path)
        if under(me, (*DOMAIN, "controller.store")) and me != "controller.store.schema":  # migrations are history
            found += [f"{path.relative_to(ROOT)}:{line}: {text!r}" for text, line in strings(path)
                      if any(w in text for w in words)]
    assert found == []


def test_importing_the_drivers_loads_no_controller_and_no_ocpp() -> None:
    code = ("import sys, drivers; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('controller', 'ocpp', 'jsonschema')); print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
