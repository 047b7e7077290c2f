"""The site configuration: one TOML file, validated by pydantic.

Every error names the file and the dotted key that is wrong, because the person reading it is an
installer with a terminal, not a developer with a debugger.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from controller.passwords import parse_hash
from controller.load_management import config as load_management
from controller.load_management.config import ChargerLoadKeys, CircuitConfig, LoadManagementSection
from controller.upstream.config import UpstreamSection
from drivers.config import BusConfig, MeterConfig, ReaderConfig, validate_drivers


DEFAULT_CONFIG = "/etc/evedge/evedge.toml"
"""The site config's one name: in the systemd unit, the install guide and every command's default."""


def default_config_path() -> str:
    """Where commands look for the config when not told: $EVEDGE_CONFIG, else DEFAULT_CONFIG."""
    return os.environ.get("EVEDGE_CONFIG") or DEFAULT_CONFIG


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""


class ListenError(ConfigError):
    """A listener that could not bind when the controller started (a port in use, a port below
    1024 for an unprivileged user): the message names the key and the address."""


class _Section(BaseModel):
    """Unknown keys are errors, and so are loose types: TOML has numbers and booleans, so "300"
    for a number or "yes" / 1 for a boolean is a mistake to name, not a value to guess at (an
    integer where a decimal number is expected is fine)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


ConfigPath = Annotated[Path, Strict(False)]
"""A path: TOML writes it as a string."""


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


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as \"Europe/Berlin\")") from None
    return value


class SiteSection(_Section):
    name: str = "evedge site"
    data_dir: ConfigPath = Path("var")
    """Holds the SQLite file. Relative paths are relative to the config file."""
    meter_values_retention_days: int = Field(365, ge=0, le=36500)
    """Raw meter samples of a charge completed longer ago than this are deleted (0: kept for ever).
    The charge itself keeps its start and stop readings, times and energy: what billing needs."""

    timezone: Annotated[str, AfterValidator(_check_timezone)] | None = None
    """The site's IANA time zone ("Europe/Berlin") for local times in exports; default: the
    system's (the books themselves are always UTC)."""

    def zone(self) -> tzinfo | None:
        """The site's time zone; None: the system's."""
        return ZoneInfo(self.timezone) if self.timezone else None


OFFLINE_GRACE_S = 60
"""Beyond two heartbeat intervals, what a charger on a slow link is granted before it is offline."""


class OcppSection(_Section):
    listen: ListenAddress = "0.0.0.0:9000"
    unknown_chargers: Literal["reject", "pending", "accept"] = "reject"
    heartbeat_interval_s: int = Field(300, ge=10, le=86400)
    """The interval given to chargers in BootNotification.conf."""
    call_timeout_s: float = Field(30.0, gt=0, le=600)
    """How long to wait for a charger's answer to one of our calls."""
    offline_after_s: float | None = Field(None, ge=1, le=172800)
    """A charger not heard from for this long (no frame, no answer to our WebSocket ping, sent
    once it has been quiet for half of this) is offline: its connection is closed. Default:
    twice heartbeat_interval_s plus OFFLINE_GRACE_S."""
    remote_start_timeout_s: float = Field(180.0, gt=0, le=86400)
    """A remote start that has not become a StartTransaction by then is marked `failed`."""
    clock_tolerance_s: int = Field(300, ge=1, le=86400)
    """A charger's timestamp further ahead of our clock than this is its clock gone wrong: the
    reading or charge is booked, flagged, and never taken as the live state."""
    accept_unknown_id_tags: bool = False
    """Answer `Accepted` for id tags not in the local list (free-vend sites)."""
    require_password: bool = False
    """OCPP security profile 1 for every charger: a charger without a `password` / `password_hash`
    in [[chargers]] (and so every unknown charger) is refused at the handshake."""
    tls_cert: ConfigPath | None = None
    tls_key: ConfigPath | None = None
    """Security profile 2: PEM certificate chain and key; when set the listener speaks only wss://.
    Relative paths are relative to the config file."""
    max_frame_bytes: int = Field(256 * 1024, ge=4096, le=16 * 1024 * 1024)
    """A larger WebSocket message closes the connection (1009)."""
    handshake_timeout_s: float = Field(10.0, gt=0, le=120)
    """A client must finish the TCP, TLS and WebSocket handshake within this."""
    max_connections_per_address: int = Field(64, ge=1)
    """Open OCPP connections allowed from one source IP (chargers behind one NAT share one)."""
    local_list: Literal["off", "push"] = "push"
    """"push": chargers that keep a local authorization list get the id-tag list (SendLocalList),
    in full at first and each change after; "off": their lists are left alone."""

    @property
    def offline_after(self) -> float:
        """offline_after_s, or its default from the heartbeat interval."""
        if self.offline_after_s is not None:
            return self.offline_after_s
        return 2 * self.heartbeat_interval_s + OFFLINE_GRACE_S

    @model_validator(mode="after")
    def _tls_pair(self) -> "OcppSection":
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise ValueError(f"{missing}: required with {'tls_cert' if missing == 'tls_key' else 'tls_key'}"
                             " (set both or neither)")
        return self



_ORIGIN = re.compile(r"^https?://[^/\s?#*]+/?$")


class ApiSection(_Section):
    listen: ListenAddress = "0.0.0.0:8080"
    api_keys: list[str] = Field(default_factory=list)
    """Operator keys accepted in the X-API-Key header: everything, including remote start/stop and
    OCPP operations. No keys at all leaves the API closed."""
    read_only_api_keys: list[str] = Field(default_factory=list)
    """Keys that may only read (GET); anything else answers 403."""
    cors_allow_origins: list[str] = Field(default_factory=list)
    """Browser origins (e.g. "https://ops.example.com") allowed to call the API; none by default."""
    metrics_require_api_key: bool = False
    """GET /metrics is open (like /healthz) for LAN scrapers; true requires X-API-Key there too."""
    max_connections: int = Field(128, ge=1, le=4096)
    """HTTP connections open at once; further clients wait until one closes (chargers come first)."""
    max_requests_in_flight: int = Field(16, ge=1, le=1024)
    """API requests handled at once; further requests wait briefly, then answer 503 with Retry-After."""

    @model_validator(mode="after")
    def _keys_and_origins(self) -> "ApiSection":
        for name in ("api_keys", "read_only_api_keys"):
            for index, key in enumerate(getattr(self, name)):
                if not key.strip() or key != key.strip():
                    raise ValueError(f"{name}[{index}]: an empty key, or one with spaces around it")
        for index, key in enumerate(self.read_only_api_keys):
            if key in self.api_keys:
                raise ValueError(f"read_only_api_keys[{index}]: also in api_keys (a key has one role)")
        for index, origin in enumerate(self.cors_allow_origins):
            if not _ORIGIN.match(origin):
                raise ValueError(f"cors_allow_origins[{index}]: expected an origin such as"
                                 f" \"https://ops.example.com\" (scheme and host, no path), got {origin!r}")
        return self



def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address or a CIDR network such as \"10.0.0.0/8\", got {value!r}") from None
    return value


class PublicChargingSection(_Section):
    """Pay-by-phone charging (docs/public-charging.md)."""

    enabled: bool = False
    session_expiry_s: int = Field(900, ge=30, le=86400)
    """A session not paid within this time expires."""
    start_timeout_s: int = Field(300, ge=10, le=86400)
    """A paid session that has not started charging by then is abandoned (the hold is released)."""
    token_ttl_s: int = Field(86400, ge=60)
    """How long a session token stays valid after the session has ended."""
    max_sessions_per_charger_per_hour: int = Field(20, ge=1)
    payment_provider: Literal["stripe", "none"] = "none"
    stripe_api_base: str = "https://api.stripe.com"
    stripe_secret_key: str = ""
    stripe_publishable_key: str = ""
    stripe_timeout_s: float = Field(10.0, gt=0, le=120)
    listen: ListenAddress | None = None
    """A listener of its own for drivers' phones (on mobile data, not the site LAN): it serves only
    the driver page and the driver's API, never the operator's. Unset: they are on [api] listen."""
    tls_cert: ConfigPath | None = None
    tls_key: ConfigPath | None = None
    """HTTPS on `listen`: PEM certificate chain and key (relative paths: to the config file).
    Without them, put a reverse proxy that speaks HTTPS in front (docs/public-charging.md)."""
    trusted_proxies: list[Annotated[str, AfterValidator(_check_network)]] = Field(default_factory=list)
    """Reverse proxies (addresses or CIDRs, "127.0.0.1", "10.0.0.0/8") whose X-Forwarded-For names
    the driver: rate limits then count the driver's address, not the proxy's. From anyone else the
    header is ignored (a client could write anything in it)."""
    operator_name: str = Field("", max_length=100)
    operator_contact: str = Field("", max_length=200)
    """Shown on the driver page: who runs the chargers, and how to reach them (a phone number, an
    e-mail address)."""

    @model_validator(mode="after")
    def _listener(self) -> "PublicChargingSection":
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise ValueError(f"{missing}: required with {'tls_cert' if missing == 'tls_key' else 'tls_key'}"
                             " (set both or neither)")
        if self.tls_cert is not None and self.listen is None:
            raise ValueError("listen: required with tls_cert and tls_key (they are for the public listener)")
        return self

    @model_validator(mode="after")
    def _stripe_keys(self) -> "PublicChargingSection":
        if self.enabled and self.payment_provider == "stripe":
            if not self.stripe_secret_key:
                raise ValueError("stripe_secret_key: required with payment_provider = \"stripe\"")
            if not self.stripe_publishable_key:
                raise ValueError("stripe_publishable_key: required with payment_provider = \"stripe\"")
        return self


def _check_tax_rate(value: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"expected a decimal string such as \"0.21\", got {value!r}") from None
    if not rate.is_finite() or not 0 <= rate < 10:
        raise ValueError("must be between 0 and 10")
    return value


class Pricing(_Section):
    """Money in the currency's minor units (cents); tax_rate is a decimal string ("0.21")."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    price_per_kwh: int = Field(ge=0, le=1_000_000)
    start_fee: int = Field(0, ge=0, le=1_000_000)
    tax_rate: Annotated[str, AfterValidator(_check_tax_rate)] = "0"
    amount_authorized: int = Field(gt=0, le=100_000_000)


def _check_password_hash(value: str) -> str:
    parse_hash(value)
    return value


MAX_CONNECTORS = 100
"""The most connectors a charger may have (also the bound on an unconfigured charger's ids)."""


class ChargerConfig(_Section, ChargerLoadKeys):
    id: str = Field(min_length=1, max_length=64)
    connectors: int = Field(1, ge=1, le=MAX_CONNECTORS)
    name: str = ""
    public_code: str | None = Field(None, pattern=r"^[A-Za-z0-9]{1,10}$")
    """The code drivers type or scan (QR to /charge/CODE); case-insensitive. Needs `pricing`."""
    pricing: Pricing | None = None
    password: str | None = Field(None, min_length=16, max_length=40)
    """OCPP security profile 1: the charger sends HTTP Basic auth with its id as the username and
    this as the password (the AuthorizationKey, 16-40 characters)."""
    password_hash: Annotated[str, AfterValidator(_check_password_hash)] | None = None
    """The same, stored hashed: the output of `evedge hash-password`. Set one of the two."""
    upstream_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[^/\s?#]+$")
    """Local-controller mode ([upstream.ocpp]): the id the central system knows this charger by
    (default: its id)."""
    upstream_password: str | None = Field(None, min_length=1, max_length=40)
    """Its Basic auth password towards the central system (default: [upstream.ocpp] password)."""
    meter: Literal["charger", "connector-meter"] = "charger"
    """Where meterStart/meterStop come from: the charger's own meter, or the [[meters]] entry with
    role "connector" on that connector (for chargers whose meter is missing or not trusted)."""

    @model_validator(mode="after")
    def _one_password(self) -> "ChargerConfig":
        if self.password is not None and self.password_hash is not None:
            raise ValueError("password_hash: set either password or password_hash, not both")
        return self

    @model_validator(mode="after")
    def _code_needs_pricing(self) -> "ChargerConfig":
        if self.public_code is not None and self.pricing is None:
            raise ValueError("pricing: required when public_code is set")
        return self


class LoggingSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    """text: one `key=value` line per event; json: one JSON object per line."""
    frame_log: list[str] = Field(default_factory=list)
    """Charger ids whose OCPP frames are logged (evedge.frames); "*" logs every charger."""


class Config(_Section):
    """The whole file. `source` is where it came from, for error messages and relative paths."""

    site: SiteSection = SiteSection()
    ocpp: OcppSection = OcppSection()
    api: ApiSection = ApiSection()
    logging: LoggingSection = LoggingSection()
    upstream: UpstreamSection = UpstreamSection()
    public_charging: PublicChargingSection = PublicChargingSection()
    chargers: list[ChargerConfig] = Field(default_factory=list)
    buses: list[BusConfig] = Field(default_factory=list)
    meters: list[MeterConfig] = Field(default_factory=list)
    readers: list[ReaderConfig] = Field(default_factory=list)
    """Hardware on the site's wires (drivers/): Modbus buses, energy meters, card readers."""
    circuits: list[CircuitConfig] = Field(default_factory=list)
    load_management: LoadManagementSection = LoadManagementSection()
    """Load management (controller/load_management/): circuits and the loop's timing."""
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_chargers(self) -> "Config":
        seen: set[str] = set()
        for index, charger in enumerate(self.chargers):
            if charger.id in seen:
                raise ValueError(f"chargers[{index}].id: duplicate charger id {charger.id!r}")
            seen.add(charger.id)
        codes: set[str] = set()
        for index, charger in enumerate(self.chargers):
            if charger.public_code is not None:
                if charger.public_code.upper() in codes:
                    raise ValueError(f"chargers[{index}].public_code: duplicate code {charger.public_code!r}")
                codes.add(charger.public_code.upper())
        upstream_ids: set[str] = set()
        for index, charger in enumerate(self.chargers):
            upstream_id = charger.upstream_id or charger.id
            if upstream_id in upstream_ids:
                raise ValueError(f"chargers[{index}].upstream_id: {upstream_id!r} names another charger upstream too")
            upstream_ids.add(upstream_id)
        return self

    @model_validator(mode="after")
    def _hardware(self) -> "Config":
        validate_drivers(self.buses, self.meters, self.readers)
        chargers = {c.id: c for c in self.chargers}
        for section, items in (("meters", self.meters), ("readers", self.readers)):
            for index, item in enumerate(items):
                if item.charger is None:
                    continue
                charger = chargers.get(item.charger)
                if charger is None:
                    raise ValueError(f"{section}[{index}].charger: unknown charger {item.charger!r}"
                                     f" (known: {', '.join(sorted(chargers)) or 'none'})")
                if item.connector is not None and item.connector > charger.connectors:
                    raise ValueError(f"{section}[{index}].connector: charger {item.charger!r} has"
                                     f" {charger.connectors} connector(s), not {item.connector}")
        placed: dict[tuple[str, int], str] = {}
        for index, meter in enumerate(self.meters):
            if meter.role == "connector":
                key = (meter.charger, meter.connector)
                if key in placed:
                    raise ValueError(f"meters[{index}]: {meter.id!r} and {placed[key]!r} are both the meter of"
                                     f" {meter.charger} connector {meter.connector}")
                placed[key] = meter.id
        for index, charger in enumerate(self.chargers):
            if charger.meter == "connector-meter" and not any(c == charger.id for c, _ in placed):
                raise ValueError(f"chargers[{index}].meter: \"connector-meter\" needs a [[meters]] entry with"
                                 f" role = \"connector\" and charger = {charger.id!r}")
        return self

    @model_validator(mode="after")
    def _circuits(self) -> "Config":
        load_management.check(self)
        return self

    @model_validator(mode="after")
    def _one_listener_per_port(self) -> "Config":
        taken: dict[int, tuple[str, str]] = {}
        for key, listen in self.listeners().items():
            host, port = parse_listen(listen)
            if port == 0:  # a free port each
                continue
            other = taken.get(port)
            if other is not None and (host == other[1] or _WILDCARD & {host, other[1]}):
                raise ValueError(f"{key}: port {port} is also {other[0]}'s ({listen!r}); one listener per port")
            taken.setdefault(port, (key, host))
        return self

    def listeners(self) -> dict[str, str]:
        """Every listening address by its dotted config key."""
        listeners = {"ocpp.listen": self.ocpp.listen, "api.listen": self.api.listen}
        if self.public_charging.listen is not None:
            listeners["public_charging.listen"] = self.public_charging.listen
        return listeners

    @property
    def data_dir(self) -> Path:
        base = self.source.parent if self.source else Path.cwd()
        return (base / self.site.data_dir).resolve()

    @property
    def ocpp_tls_files(self) -> tuple[Path, Path] | None:
        """[ocpp] tls_cert and tls_key resolved against the config file's directory, if set."""
        if self.ocpp.tls_cert is None or self.ocpp.tls_key is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return (base / self.ocpp.tls_cert).resolve(), (base / self.ocpp.tls_key).resolve()

    @property
    def public_tls_files(self) -> tuple[Path, Path] | None:
        """[public_charging] tls_cert and tls_key resolved against the config file's directory, if set."""
        section = self.public_charging
        if section.tls_cert is None or section.tls_key is None:
            return None
        base = self.source.parent if self.source else Path.cwd()
        return (base / section.tls_cert).resolve(), (base / section.tls_key).resolve()

    @property
    def upstream_ca_file(self) -> Path | None:
        """[upstream.ocpp] ca_file resolved against the config file's directory, if set."""
        ocpp = self.upstream.ocpp
        if ocpp is None or ocpp.ca_file is None:
            return None
        return ((self.source.parent if self.source else Path.cwd()) / ocpp.ca_file).resolve()

    def upstream_id(self, charger_id: str) -> str | None:
        """The id the central system above the site knows a charger by (its `upstream_id`, else its
        own); None when the site is not a local controller ([upstream.ocpp] unset)."""
        if self.upstream.ocpp is None:
            return None
        charger = self.charger(charger_id)
        return (charger.upstream_id if charger else None) or charger_id

    def charger(self, charger_id: str) -> ChargerConfig | None:
        return next((c for c in self.chargers if c.id == charger_id), None)


def lockouts(config: Config, path: str | Path) -> list[str]:
    """What in a valid file would lock everyone out, as `FILE: KEY: problem` lines like load_config's.

    An empty file is valid (every key has a default) and would be both: no operator key, and no
    charger let in. `check-config` and a reload (SIGHUP) refuse such a file; `run` warns.
    """
    problems = []
    if not config.api.api_keys:
        problems.append(f"{path}: api.api_keys: no operator key: the API would refuse every operator")
    if not config.chargers and config.ocpp.unknown_chargers == "reject":
        problems.append(f'{path}: chargers: none, and [ocpp] unknown_chargers = "reject": every charger would be'
                        " refused")
    return problems


_WILDCARD = {"0.0.0.0", "::", ""}  # every address: it overlaps any other host on the same port
_KEY = re.compile(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*")


def _dotted(loc: tuple[str | int, ...], raw: object) -> str:
    """The key as written in the file. pydantic's location also holds the member of a union it
    tried (`buses[0].serial.baudrate`): a name that is not in the file is left out, unless it is
    the last (a missing key)."""
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, str) and isinstance(raw, dict) and part not in raw and index < len(loc) - 1:
            continue
        raw = raw[part] if isinstance(raw, (dict, list)) and _has(raw, part) else None
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _has(container: dict | list, part: str | int) -> bool:
    return part in container if isinstance(container, dict) else isinstance(part, int) and part < len(container)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file, raising ConfigError("FILE: KEY: problem")."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Config.model_validate({**raw, "source": path.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = _dotted(err["loc"], raw)
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            # a section's own check names the key inside it ("tls_key: required..."): one dotted key
            inner, sep, rest = message.partition(": ")
            if key and sep and _KEY.fullmatch(inner):
                key, message = f"{key}.{inner}", rest
            problems.append(f"{path}: {key}: {message}" if key else f"{path}: {message}")
        raise ConfigError("\n".join(problems)) from exc
