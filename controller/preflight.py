"""What a valid config can still get wrong on the machine it runs on: checked by `evedge
check-config` (the unit's ExecStartPre) and again at the start of `evedge run`.

The file's own rules are in config.py (load_config refuses a file that breaks them). These are the
traps it cannot see: a key everyone has read in the README, a port the unprivileged service user
cannot bind, a data directory it cannot create or write. A warning still lets the controller run;
a fatal finding stops it before it has half started.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from controller.config import Config, parse_listen
from controller.store.db import DB_FILE

KNOWN_KEYS = frozenset({"change-me"})
"""API keys printed in our README and example config: anyone on the LAN may have read them."""
FIRST_UNPRIVILEGED_PORT = 1024


@dataclass(frozen=True)
class Finding:
    key: str  # the dotted config key
    message: str
    fatal: bool = False

    def line(self, config: Config) -> str:
        """`FILE: KEY: message`, like a config error."""
        return f"{config.source}: {self.key}: {self.message}"


def check(config: Config) -> list[Finding]:
    return [*_api_keys(config), *_ports(config), *_data_dir(config.data_dir)]


def _api_keys(config: Config) -> list[Finding]:
    found = []
    for name in ("api_keys", "read_only_api_keys"):
        for index, key in enumerate(getattr(config.api, name)):
            if key in KNOWN_KEYS:
                found.append(Finding(f"api.{name}[{index}]", f"{key!r} is the example key from the README: anyone "
                                     "who has read it can use the API; replace it with a random key (`evedge init` "
                                     "writes one; or python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"))
    return found  # no operator key at all: config.lockouts (check-config and a reload refuse it)


def _ports(config: Config) -> list[Finding]:
    found = []
    for key, listen in config.listeners().items():
        port = parse_listen(listen)[1]
        if 0 < port < FIRST_UNPRIVILEGED_PORT:
            found.append(Finding(key, f"port {port} is below {FIRST_UNPRIVILEGED_PORT}: the systemd unit runs evedge "
                                 "as an unprivileged user, which cannot bind it; use a port from 1024 up"))
    return found


def _data_dir(path: Path) -> list[Finding]:
    """The directory must exist and be writable, or be creatable: its nearest existing ancestor
    a writable directory. os.access also answers for a read-only mount (EROFS)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    user = _user()
    if existing == path and not path.is_dir():
        return [Finding("site.data_dir", f"{path} is not a directory", fatal=True)]
    if not existing.is_dir():
        return [Finding("site.data_dir", f"cannot create {path}: {existing} is not a directory", fatal=True)]
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write to" if existing == path else f"create {path}: no write access to"
        return [Finding("site.data_dir", f"user {user} cannot {verb} {existing}", fatal=True)]
    database = path / DB_FILE
    if database.exists() and not os.access(database, os.R_OK | os.W_OK):
        return [Finding("site.data_dir", f"user {user} cannot write {database}", fatal=True)]
    return []


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
