"""The site configuration: one TOML file, validated by pydantic.

Every error names the file and the dotted key that is wrong, because the person reading it is an
installer with a terminal, not a developer with a debugger.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_listen(value: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::]:9000") into its parts; port 0 picks a free port."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _check_listen(value: str) -> str:
    parse_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_check_listen)]


class SiteSection(_Section):
    name: str = "evedge site"
    data_dir: Path = Path("var")
    """Holds the SQLite file. Relative paths are relative to the config file."""


class OcppSection(_Section):
    listen: ListenAddress = "0.0.0.0:9000"
    unknown_chargers: Literal["reject", "pending", "accept"] = "reject"
    heartbeat_interval_s: int = Field(300, ge=10, le=86400)
    """The interval given to chargers in BootNotification.conf."""
    call_timeout_s: float = Field(30.0, gt=0, le=600)
    """How long to wait for a charger's answer to one of our calls."""
    remote_start_timeout_s: float = Field(180.0, gt=0)
    """A remote start that has not become a StartTransaction by then is marked `failed`."""
    accept_unknown_id_tags: bool = False
    """Answer `Accepted` for id tags not in the local list (free-vend sites)."""



class ApiSection(_Section):
    listen: ListenAddress = "0.0.0.0:8080"
    api_keys: list[str] = Field(default_factory=list)
    """Keys accepted in the X-API-Key header. An empty list leaves the API closed."""



class ChargerConfig(_Section):
    id: str = Field(min_length=1, max_length=64)
    connectors: int = Field(1, ge=1, le=100)
    name: str = ""


class LoggingSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section):
    """The whole file. `source` is where it came from, for error messages and relative paths."""

    site: SiteSection = SiteSection()
    ocpp: OcppSection = OcppSection()
    api: ApiSection = ApiSection()
    logging: LoggingSection = LoggingSection()
    chargers: list[ChargerConfig] = Field(default_factory=list)
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_chargers(self) -> "Config":
        seen: set[str] = set()
        for index, charger in enumerate(self.chargers):
            if charger.id in seen:
                raise ValueError(f"chargers[{index}].id: duplicate charger id {charger.id!r}")
            seen.add(charger.id)
        return self

    @property
    def data_dir(self) -> Path:
        base = self.source.parent if self.source else Path.cwd()
        return (base / self.site.data_dir).resolve()

    def charger(self, charger_id: str) -> ChargerConfig | None:
        return next((c for c in self.chargers if c.id == charger_id), None)


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(path: str | Path) -> Config:
    """Read and validate a config file, raising ConfigError("FILE: KEY: problem")."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate({**raw, "source": path.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _dotted(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{path}: {key}: {message}" if key else f"{path}: {message}")
        raise ConfigError("\n".join(problems)) from exc
