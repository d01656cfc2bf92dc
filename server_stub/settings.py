"""Collector settings: command-line options first, then environment, then defaults.

There is deliberately no default admin password: an unset password disables admin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.errors import ConfigError

# A SQLite file in the working directory: the collector runs with nothing else installed,
# and a workshop finds its database where it started the service.
DEFAULT_DB_URL = "sqlite:///ardoise-collector.db"
DEFAULT_MAX_BODY = 1 << 20  # 1 MiB: a certificate is a few KiB, an audit report tens of KiB
SMALL_BODY = 64 << 10  # enrollment and progress requests


@dataclass
class Settings:
    db_url: str = DEFAULT_DB_URL
    admin_password: str | None = None
    # When set, every page and query needs a login except /verify, even before the first
    # account exists (once one does, a login is needed anyway: server_stub.accounts.access).
    require_login: bool = False
    max_body: int = DEFAULT_MAX_BODY
    progress_timeout_s: float = 60.0
    progress_rate: float = 5.0  # requests per second per station
    progress_burst: float = 10.0
    token_ttl_hours: float = 168.0
    # The public verify (page and API) is anonymous: per client address, this many checks a
    # second with bursts of verify_burst; 0 turns the limit off (a trusted network).
    verify_rate: float = 5.0
    verify_burst: float = 20.0
    # The collector's own Ed25519 key that signs receipts; None: receipts.default_key_path().
    receipt_key_path: str | None = None
    # NORMAL: a commit does not wait for fsync (fast; an OS crash or power cut may lose the
    # last commits). FULL: every commit is on disk before the 201 (about 2 ms more each).
    sqlite_synchronous: str = "normal"
    # Wrong admin passwords: 10 from one address, or 100 in all, within 10 minutes lock
    # that address (or the account) out for this long.
    admin_lockout_s: float = 900.0
    # Signs the admin forms' per-session tokens. ``serve`` draws one at start and hands it
    # to its workers; None: create_app draws one (single process).
    secret_key: str | None = None
    # The clock the pages show dates in ("1 décembre 2026 à 19:26 (heure de Paris)"); the
    # database and the API keep UTC.
    timezone: str = "Europe/Paris"
    # The optional CO2 estimate of closed lots' reports (docs/lots.md "CO2 estimate"): kg
    # CO2e avoided per reused device, and the published source of that figure. Both or
    # neither: a number without its source is not printed.
    co2_kg_per_reused_device: int | None = None
    co2_source: str | None = None

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_password)


def normalize_db_url(url: str) -> str:
    """Accept the short forms people type; SQLAlchemy needs the driver spelled out."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:  # a bare path means a SQLite file
        return "sqlite:///" + str(Path(url).expanduser().absolute())
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        # Relative to where the collector was started: say so in full in every message.
        return "sqlite:///" + str(Path(url[len("sqlite:///"):]).absolute())
    return url


def from_env(**overrides) -> Settings:
    """Settings from ARDOISE_COLLECTOR_* / ARDOISE_ADMIN_PASSWORD, then explicit overrides."""
    s = Settings()
    env = os.environ
    if env.get("ARDOISE_COLLECTOR_DB"):
        s.db_url = env["ARDOISE_COLLECTOR_DB"]
    if env.get("ARDOISE_ADMIN_PASSWORD"):
        s.admin_password = env["ARDOISE_ADMIN_PASSWORD"]
    if env.get("ARDOISE_COLLECTOR_REQUIRE_LOGIN", "").lower() in ("1", "true", "yes"):
        s.require_login = True
    if env.get("ARDOISE_COLLECTOR_MAX_BODY"):
        try:
            s.max_body = int(env["ARDOISE_COLLECTOR_MAX_BODY"])
        except ValueError:
            raise ConfigError("ARDOISE_COLLECTOR_MAX_BODY must be a number of bytes") from None
    if env.get("ARDOISE_COLLECTOR_TIMEZONE"):
        s.timezone = env["ARDOISE_COLLECTOR_TIMEZONE"]
    if env.get("ARDOISE_COLLECTOR_CO2_FACTOR"):
        s.co2_kg_per_reused_device = co2_factor_value(env["ARDOISE_COLLECTOR_CO2_FACTOR"],
                                                      "ARDOISE_COLLECTOR_CO2_FACTOR")
    if env.get("ARDOISE_COLLECTOR_CO2_SOURCE"):
        s.co2_source = env["ARDOISE_COLLECTOR_CO2_SOURCE"]
    for key, value in overrides.items():
        if value is not None:
            setattr(s, key, value)
    s.db_url = normalize_db_url(s.db_url)
    check_co2(s)
    try:
        ZoneInfo(s.timezone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"unknown time zone {s.timezone!r} (ARDOISE_COLLECTOR_TIMEZONE, e.g. Europe/Paris)") from None
    return s


MAX_CO2_FACTOR = 10_000  # kg CO2e per device: far above any laptop's whole life cycle
MAX_CO2_SOURCE = 1000  # the report's limit on a text field


def co2_factor_value(text: str, name: str = "--co2-factor") -> int:
    """A whole number of kg CO2e per reused device (the signed report carries no floats)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of kg CO2e per reused device, e.g. 27") from None
    if not 0 < value <= MAX_CO2_FACTOR:
        raise ConfigError(f"{name} must be between 1 and {MAX_CO2_FACTOR} kg CO2e per reused device")
    return value


def check_co2(s: Settings) -> None:
    """The factor and its source come together, or the estimate is left out."""
    factor, source = s.co2_kg_per_reused_device, s.co2_source
    if source is not None:
        source = " ".join(source.split())
        s.co2_source = source or None
    if (factor is None) != (s.co2_source is None):
        raise ConfigError("a CO2 factor needs its published source, and a source needs its factor: set both "
                          "--co2-factor and --co2-source (ARDOISE_COLLECTOR_CO2_FACTOR and _SOURCE), or neither")
    if s.co2_source is not None and (len(s.co2_source) > MAX_CO2_SOURCE or not s.co2_source.isprintable()):
        raise ConfigError(f"the CO2 source must be printable text of at most {MAX_CO2_SOURCE} characters")


def read_password_file(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read admin password file {path}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"admin password file {path} is empty")
    return text
