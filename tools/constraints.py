"""constraints.txt: the exact version of every package evedge's runtime needs, read from a venv.

An unattended install (`pip install -c constraints.txt ...`) then gets the versions the test suite
passed with, not whatever is newest on the day. Run `make constraints` in a venv where `make test`
passes; the test extras are not pinned (they are not installed on a site).

    .venv/bin/python -m tools.constraints > constraints.txt
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("# The versions of everything evedge's runtime needs, as tested (make constraints writes this;\n"
          "# docs/install.md: unattended installs). Install with: pip install -c constraints.txt ...\n")


def runtime_requirements() -> list[Requirement]:
    """pyproject.toml's `dependencies` (the runtime; not the test extras)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def applies(requirement: Requirement) -> bool:
    """Whether a requirement holds on this interpreter, outside any extra."""
    return requirement.marker is None or requirement.marker.evaluate({"extra": ""})


def installed_closure(requirements: list[Requirement]) -> dict[str, str]:
    """name -> installed version of the requirements and everything they require, transitively."""
    found: dict[str, str] = {}
    todo = [r for r in requirements if applies(r)]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{requirement} is not installed in {sys.prefix}: run `make test` first") from None
        found[name] = dist.version
        todo += [r for r in map(Requirement, dist.requires or []) if applies(r)]
    return dict(sorted(found.items()))


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items())


def read(path: Path) -> dict[str, str]:
    """The pins of a constraints file (comments and blank lines skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            pins[canonicalize_name(name)] = version if sep else ""
    return pins


if __name__ == "__main__":
    sys.stdout.write(render(installed_closure(runtime_requirements())))
