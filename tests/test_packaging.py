"""The release as an installer gets it: a wheel built by `python -m build` that holds everything the
controller reads at run time (meter maps, the driver page), its licence and version, a changelog
entry for that version, and constraints that pin the whole runtime.

The wheel is built as a release is (sdist, then the wheel from the sdist, in an isolated build
environment) from a copy of the source, so the checkout gets no build/ or egg-info directories.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import controller
from tests.support import PROJECT_ROOT
from tools import constraints

TEST_ONLY = {"pytest", "pytest-trio", "hypothesis", "schemathesis", "build", "playwright"}
NOT_PACKAGED = (".git", ".venv", "var", "__pycache__", ".hypothesis", ".pytest_cache", "*.egg-info", "build", "dist")


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    log: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("release")
    source = tmp / "src"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*NOT_PACKAGED), symlinks=True)
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"), str(source)],
                            capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    (wheel,) = (tmp / "dist").glob("evedge-*.whl")
    (sdist,) = (tmp / "dist").glob("evedge-*.tar.gz")
    return Built(wheel, sdist, log)


def _source_files(top: str, pattern: str) -> set[str]:
    return {p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / top).rglob(pattern)
            if "__pycache__" not in p.parts}


def test_wheel_holds_the_code_and_the_package_data(built: Built) -> None:
    names = set(zipfile.ZipFile(built.wheel).namelist())
    expected = _source_files("controller", "*.py") | _source_files("drivers", "*.py")
    expected |= _source_files("drivers/meters/maps", "*.toml")  # the built-in meter models
    expected |= _source_files("controller", "*.html")  # the driver page of public charging
    expected |= _source_files("controller", "*.js") | _source_files("controller", "*.css")  # the dashboard's
    expected |= {"controller/py.typed"}
    assert "drivers/meters/maps/sdm630.toml" in expected and "controller/public_charging/static/charge.html" in expected
    assert "controller/dashboard/static/dashboard.js" in expected
    assert "controller/dashboard/templates/dashboard/overview.html" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    strays = sorted(n for n in names if n.split("/")[0] in ("tests", "bench", "tools", "config", "docs"))
    assert not strays, strays


def test_source_release_carries_the_unit_the_configs_and_the_pins(built: Built) -> None:
    """What docs/install.md has the installer copy from /opt/evedge/src."""
    with tarfile.open(built.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("systemd/evedge.service", "systemd/99-evedge-serial.rules", "config/example.toml",
                   "docs/install.md", "constraints.txt", "CHANGELOG.md", "LICENSE"):
        assert needed in names, needed


def test_wheel_metadata_names_version_licence_and_command(built: Built) -> None:
    archive = zipfile.ZipFile(built.wheel)
    dist_info = f"evedge-{controller.__version__}.dist-info"
    metadata = email.message_from_string(archive.read(f"{dist_info}/METADATA").decode())
    assert metadata["Version"] == controller.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    assert archive.read(f"{dist_info}/licenses/LICENSE") == (PROJECT_ROOT / "LICENSE").read_bytes()
    assert "evedge = controller.cli:main" in archive.read(f"{dist_info}/entry_points.txt").decode()
    requires = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    runtime = {canonicalize_name(r.name) for r in requires if r.marker is None}
    assert "pymodbus" in runtime and not runtime & TEST_ONLY, runtime


def test_build_prints_no_deprecation_warning(built: Built) -> None:
    warnings = [line for line in built.log.splitlines() if re.search(r"deprecat|SetuptoolsWarning", line, re.I)]
    assert not warnings, "\n".join(warnings)


def test_the_installed_wheel_runs_from_its_own_files(built: Built, tmp_path: Path) -> None:
    """Installed without the checkout: the command works and finds its data in the installed package."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(built.wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    script = ("import controller, drivers\n"
              "from drivers.meters.models import MODELS, load_model\n"
              "from controller.public_charging.api import _page_html\n"
              "assert all(load_model(m).registers for m in MODELS), MODELS\n"
              "print(controller.__file__, drivers.__file__, len(MODELS), len(_page_html()))\n")
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    controller_file, drivers_file, models, page = run.stdout.split()
    assert controller_file.startswith(str(site)) and drivers_file.startswith(str(site))
    assert int(models) >= 7 and int(page) > 1000
    version = subprocess.run([sys.executable, "-m", "controller", "--version"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.strip() == f"evedge {controller.__version__}", version


def test_changelog_has_a_section_for_this_version() -> None:
    text = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", text, re.M)
    assert versions and versions[0] == controller.__version__, (versions, controller.__version__)
    assert "Upgrading" in text


# -- constraints.txt ------------------------------------------------------------------------------


def test_constraints_pin_every_runtime_dependency_within_its_bound() -> None:
    pins = constraints.read(PROJECT_ROOT / "constraints.txt")
    assert all(re.fullmatch(r"\d[\w.+!-]*", v) for v in pins.values()), "every line is NAME==VERSION"
    for requirement in constraints.runtime_requirements():
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned, f"constraints.txt does not pin {requirement.name}: run `make constraints`"
        assert requirement.specifier.contains(pinned, prereleases=True), f"{requirement.name}=={pinned} is outside {requirement}"
    assert not set(pins) & TEST_ONLY, "test tools are not installed on a site"


def test_constraints_pin_what_the_pinned_packages_require() -> None:
    """For each pinned package installed at its pinned version: what it requires is pinned too,
    at a version it accepts (so `pip install -c constraints.txt` never picks an unpinned package)."""
    pins = constraints.read(PROJECT_ROOT / "constraints.txt")
    checked = 0
    for name, version in pins.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for requirement in map(Requirement, dist.requires or []):
            if not constraints.applies(requirement):
                continue
            pinned = pins.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{name} requires {requirement}, which constraints.txt does not pin"
            assert requirement.specifier.contains(pinned, prereleases=True), f"{name} needs {requirement}, pinned {pinned}"
    assert checked >= len(pins) // 2, "most pins should be the versions installed here"
