"""`evedge init [PATH]`: a first site config that is safe and runs as it is.

Copying config/example.toml leaves its API key `change-me` (printed in the README) and a data
directory next to the file, which the systemd unit cannot write (/etc is read-only to it). This
writes a short commented file instead: a random operator key, and a data directory that works
where the file is used: the unit's state directory for the unit's config, `$STATE_DIRECTORY`
when systemd runs us with one, else `var` next to the file (a checkout).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

from controller.config import DEFAULT_CONFIG

UNIT_STATE_DIRECTORY = "/var/lib/evedge"  # systemd/evedge.service: StateDirectory=evedge
SERVICE_GROUP = "evedge"  # the unit's Group=: it must be able to read the file

TEMPLATE = """\
# evedge site configuration, written by `evedge init`. Check it with: evedge check-config {path}
# Every key and its default: config/example.toml in the evedge source. Unknown keys are errors.

[site]
name = {name}
# The books (evedge.sqlite3). A relative path is relative to this file.
data_dir = {data_dir}

[ocpp]
# Chargers connect to ws://THIS-HOST:9000/ocpp/{{chargeBoxId}}.
listen = "0.0.0.0:9000"
# Chargers not listed below: "pending" lists them for approval (evedge chargers approve ID),
# "reject" refuses them, "accept" takes any.
unknown_chargers = "pending"

[api]
# The REST API and the installer commands (evedge chargers, tags, ...).
listen = "0.0.0.0:8080"
# The operator key, made for this site: it can start charges and change the card list, so keep
# this file readable by root and the evedge group only. Send it as the X-API-Key header.
api_keys = [{key}]

[logging]
level = "info"

# One table per charger, by the chargeBoxId it connects with:
# [[chargers]]
# id = "CHARGER-001"
# connectors = 2
"""


def data_dir_for(config_path: Path, environ: Mapping[str, str]) -> str:
    """Where the books go for a config written to `config_path`."""
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return state
    if config_path.absolute().parent == Path(DEFAULT_CONFIG).parent:
        return UNIT_STATE_DIRECTORY
    return "var"


def render(config_path: Path, environ: Mapping[str, str], key: str | None = None) -> str:
    """The file's text; `key` defaults to a new random one."""
    return TEMPLATE.format(path=config_path, name=json.dumps("evedge site"),
                           data_dir=json.dumps(data_dir_for(config_path, environ)),
                           key=json.dumps(key or secrets.token_urlsafe(24)))


def write(config_path: Path, environ: Mapping[str, str], force: bool = False) -> None:
    """Write the file (mode 0640, never over an existing one unless `force`). Raises
    FileExistsError, or OSError when the place cannot be written."""
    text = render(config_path, environ)
    parent = config_path.absolute().parent
    if not parent.exists():
        parent.mkdir(mode=0o750, parents=True)
        _give_to_service(parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    with os.fdopen(os.open(config_path, flags, 0o640), "w", encoding="utf-8") as out:
        out.write(text)
    _give_to_service(config_path)


def _give_to_service(path: Path) -> None:
    """Run as root on a machine with the service's group: the service may read what we wrote."""
    if os.geteuid() == 0:
        try:
            shutil.chown(path, group=SERVICE_GROUP)
        except LookupError:
            pass  # no such group: not installed as in docs/install.md; the owner is root
