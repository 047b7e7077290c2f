"""SIGHUP: re-read the config file and apply what can change without a restart.

Applied live (whitelist; everything else needs `systemctl restart evedge`):

- [logging] level, format, frame_log (also for connections already open)
- [api] api_keys, read_only_api_keys, cors_allow_origins, metrics_require_api_key (checked per request)
- [ocpp] heartbeat_interval_s (given at the charger's next BootNotification), call_timeout_s
  (connections opened after the reload), remote_start_timeout_s, accept_unknown_id_tags,
  unknown_chargers, offline_after_s (also for connections already open)
- the id-tag list is re-read from the database (it lives in SQLite, not in the file)

Needs a restart: [site] data_dir, [ocpp] listen, [api] listen, the [[chargers]] list, and any
section not named above. A reload that changes them logs a warning naming each key and keeps
running with the old values; an invalid file is refused as a whole and nothing changes, and so is
one that would lock everyone out (no API key; no charger while unknown ones are rejected:
config.lockouts), such as an empty file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from controller import logs
from controller.config import Config, ConfigError, load_config, lockouts

if TYPE_CHECKING:
    from controller.site import Site

log = logging.getLogger("evedge")

LIVE_OCPP = ("heartbeat_interval_s", "call_timeout_s", "remote_start_timeout_s", "accept_unknown_id_tags",
             "unknown_chargers", "offline_after_s")
LIVE_API = ("api_keys", "read_only_api_keys", "cors_allow_origins", "metrics_require_api_key")


def merge(old: Config, new: Config) -> tuple[Config, list[str]]:
    """The config to run with after a reload, and the changed keys that need a restart."""
    ocpp = old.ocpp.model_copy(update={k: getattr(new.ocpp, k) for k in LIVE_OCPP})
    api = old.api.model_copy(update={k: getattr(new.api, k) for k in LIVE_API})
    merged = old.model_copy(update={"ocpp": ocpp, "api": api, "logging": new.logging})
    restart: list[str] = []
    for section in type(old).model_fields:
        if section == "source":
            continue
        have, want = getattr(merged, section), getattr(new, section)
        if have == want:
            continue
        if isinstance(have, BaseModel) and isinstance(want, BaseModel):
            restart += [f"{section}.{k}" for k in type(have).model_fields if getattr(have, k) != getattr(want, k)]
        else:
            restart.append(section)
    return merged, restart


async def reload(site: Site, path: str | Path) -> bool:
    """Apply the file at `path` to the running site; False (and nothing changed) if it is invalid."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        log.error("reload refused, config unchanged: %s", str(exc).replace("\n", "; "))
        return False
    if problems := lockouts(new, path):
        log.error("reload refused, config unchanged: %s", "; ".join(problems))
        return False
    merged, restart = merge(site.live.current, new)
    site.live.replace(merged)  # every part reads its settings through this holder
    logs.setup(merged.logging.level, merged.logging.format, merged.logging.frame_log)
    await site.authorization.load()
    log.info("reloaded %s: level=%s frame_log=%s api_keys=%d id_tags=%d", path, merged.logging.level,
             ",".join(merged.logging.frame_log) or "-", len(merged.api.api_keys), len(site.authorization.tags))
    for key in restart:
        log.warning("reload: %s changed in %s but needs a restart to take effect", key, path)
    return True
