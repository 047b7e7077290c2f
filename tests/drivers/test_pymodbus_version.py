"""The installed pymodbus is one whose internals the drivers were checked against.

drivers/modbus.py uses pymodbus' framers and PDU classes directly, and the meter emulator its
simulator; both change between minor versions, so a version nobody ran the driver tests on must
stop the test run with a message saying what to do, not fail somewhere deep in a Modbus exchange.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement
from packaging.version import Version

from drivers.modbus import PYMODBUS_MINORS
from tests.support import PROJECT_ROOT


def _minor(text: str) -> str:
    release = Version(text).release
    return f"{release[0]}.{release[1]}"


def _pyproject_bound() -> Requirement:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return next(r for r in map(Requirement, project["dependencies"]) if r.name == "pymodbus")


def test_installed_pymodbus_is_a_checked_minor_version() -> None:
    installed = version("pymodbus")
    assert _minor(installed) in PYMODBUS_MINORS, (
        f"\n\npymodbus {installed} is installed, but the Modbus driver was only checked against pymodbus "
        f"{', '.join(PYMODBUS_MINORS)} (drivers/modbus.py PYMODBUS_MINORS).\n"
        "drivers/modbus.py uses pymodbus internals (framers, PDU classes) that change between minor "
        "versions. Install a checked version (pip install -c constraints.txt .), or run "
        "`pytest tests/drivers tests/faults/test_devices.py` with this one and, if it passes, add "
        f"{_minor(installed)!r} to PYMODBUS_MINORS and widen the bound in pyproject.toml.\n")


def test_pyproject_bound_admits_exactly_the_checked_minors() -> None:
    bound = _pyproject_bound().specifier
    for minor in PYMODBUS_MINORS:
        assert bound.contains(f"{minor}.0") and bound.contains(f"{minor}.99"), (minor, str(bound))
    major, last = map(int, PYMODBUS_MINORS[-1].split("."))
    first = int(PYMODBUS_MINORS[0].split(".")[1])
    outside = [f"{major}.{first - 1}.99", f"{major}.{last + 1}.0", f"{major + 1}.0.0"]
    assert not [v for v in outside if bound.contains(v)], f"pyproject.toml allows more than {PYMODBUS_MINORS}: {bound}"
