"""The agent's configuration: ``ardoise.yaml`` plus kernel command-line overrides.

Where it comes from, in order:
1. the file named with ``--config``;
2. else ``ardoise.yaml`` on the FAT data partition labelled ARDOISE (mounted read-write at
   a private mountpoint when nobody mounted it yet, because the agent also keeps its
   spool, journal and key there);
3. else the defaults (wipe, certify and spool locally; no collector is ever guessed).
Then ``ardoise.<key>=<value>`` words of the kernel command line override single keys, so
a PXE or GRUB entry can set them without touching the stick.

Validation names every unknown key and every wrong type in one line, because the person
reading it is a technician at a workbench, not a developer with a traceback.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import re
import shlex
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from agent import commands, i18n
from agent.bounded import CONFIG_MAX, read_bounded
from agent.errors import ArdoiseError, ConfigError
from agent.i18n import T_
from agent.records import Media

log = logging.getLogger("ardoise.config")

CONFIG_NAME = "ardoise.yaml"
DATA_LABEL = "ARDOISE"
DEFAULT_STATE_DIR = Path("/var/lib/ardoise")
STATE_DIR_ENV = "ARDOISE_STATE_DIR"
# Where we mount the data partition ourselves when the image did not: private to the agent
# so a technician's shell does not trip over it.
PRIVATE_MOUNTPOINT = Path("/run/ardoise/data")
BY_LABEL = Path("/dev/disk/by-label")

ON_FINISH = ("poweroff", "reboot", "wait")
VERIFY = ("full", "sample")


@dataclass
class CollectorConfig:
    url: str
    token: str | None = None  # one-time enrollment token
    ca_bundle: str | None = None  # PEM file of CAs to trust instead of the system store
    retries: int = 5  # attempts per request before the file stays pending in the spool
    backoff_s: float = 1.0  # first retry delay; doubles each time, with jitter
    timeout_s: float = 30.0
    progress_interval_s: float = 5.0  # at most one progress POST per disk per interval
    # http:// to anything but this machine sends the bearer token in clear: only on purpose.
    allow_insecure_http: bool = False


@dataclass
class Operator:
    """Who performed the sanitization (NIST SP 800-88 certificate, 'Who')."""

    name: str | None = None
    title: str | None = None
    organization: str | None = None
    location: str | None = None
    contact: str | None = None


@dataclass
class Config:
    collector: CollectorConfig | None = None
    operator: Operator = field(default_factory=Operator)
    lot: str | None = None
    customer: str | None = None  # whose media these are (the certificate's "customer")
    classification: str | None = None  # NIST App. G: confidentiality of the data before
    post_classification: str | None = None  # ...and after sanitization
    validator: Operator | None = None  # NIST App. G "validation": who checks the operator's work
    policy: dict[str, dict] = field(default_factory=dict)  # media type -> overrides
    verify: str = "sample"
    exclude_serials: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    state_dir: Path = DEFAULT_STATE_DIR
    on_finish: str = "wait"
    shelf: bool = False
    thresholds: dict[str, Any] = field(default_factory=dict)
    # Drive serial -> PSID (printed on the label) of self-encrypting drives found locked:
    # the agent reverts them with it (a cryptographic erase), see docs/policy.md.
    psid: dict[str, str] = field(default_factory=dict)
    hpa_reset: bool = True
    final_zero_pass: bool = False
    rewipe_certified: bool = False
    finish_display_seconds: int = 30
    # What people read: messages, screens and PDFs (docs/i18n.md). None: the kernel word
    # ardoise.language=, else LANG. Times are shown in ``timezone``; records keep UTC.
    language: str | None = None
    timezone: str = "Europe/Paris"
    # Network boot (docs/netboot.md): the workshop's seat number of this laptop, and "the
    # certificates live only in RAM: stay on until the collector has them all".
    seat: str | None = None
    hold_until_delivered: bool = False
    # Not keys: where this config came from, for the log and the TUI footer.
    source: str | None = None
    data_partition: Path | None = None

    @classmethod
    def default(cls) -> "Config":
        """A usable config with no file: local spool only, never a guessed collector."""
        env = os.environ.get(STATE_DIR_ENV)
        return cls(state_dir=Path(env) if env else DEFAULT_STATE_DIR)

    @property
    def spool_dir(self) -> Path:
        return self.state_dir / "spool"

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "journal"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


# --------------------------------------------------------------------------- schema
#
# One table drives both the YAML validation and the typed parsing of command-line words,
# so a key cannot be accepted by one and refused by the other.


@dataclass(frozen=True)
class _Kind:
    name: str  # what the error message calls it
    check: Callable[[Any], bool]
    parse: Callable[[str], Any]  # from a kernel command-line word
    convert: Callable[[Any], Any] = lambda v: v


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_scalar_text(v: Any) -> bool:
    # Serial numbers like 12345 come out of YAML as ints; they are still serial numbers.
    return isinstance(v, str) or _is_int(v)


def _parse_scalar(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return _parse_bool(text)
    except ValueError:
        return text


STR = _Kind(T_("a string"), lambda v: isinstance(v, str), str)
OPT_STR = _Kind(T_("a string"), lambda v: v is None or isinstance(v, str), str)
BOOL = _Kind(T_("true or false"), lambda v: isinstance(v, bool), _parse_bool)
INT = _Kind(T_("an integer"), lambda v: _is_int(v) and v >= 0, int)
NUMBER = _Kind(T_("a number"), lambda v: _is_number(v) and v >= 0, float, float)
STR_LIST = _Kind(
    T_("a list of strings"),
    lambda v: isinstance(v, list) and all(_is_scalar_text(x) for x in v),
    lambda t: [x.strip() for x in t.split(",") if x.strip()],
    lambda v: [str(x) for x in v],
)


LOT_MAX = 200


def lot_problem(lot: object) -> str | None:
    """Why ``lot`` cannot name a lot, or None. The collector refuses such a certificate at
    upload (after the wipe, when it is too late to fix), so the agent refuses it at start."""
    if not isinstance(lot, str):
        return "a lot name must be text"
    if not lot.strip():
        return "a lot name cannot be empty"
    if len(lot) > LOT_MAX:
        return f"a lot name has at most {LOT_MAX} characters"
    if lot != lot.strip():
        return "a lot name cannot start or end with a space"
    if not lot.isprintable():
        return "a lot name cannot hold control characters"
    return None


LOT = _Kind(
    T_("printable text of 1 to {max} characters without edge spaces", max=LOT_MAX),
    lambda v: v is None or lot_problem(v) is None,
    str,
)


def _choice(*values: str) -> _Kind:
    return _Kind(T_("one of {values}", values="/".join(values)), lambda v: v in values, str)


def _language() -> _Kind:
    # Any language with a catalog: adding one needs no change here.
    from agent.i18n import available_languages

    return _choice(*available_languages())


def _is_timezone(v: Any) -> bool:
    from zoneinfo import ZoneInfo

    try:
        return isinstance(v, str) and ZoneInfo(v) is not None
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return False


TIMEZONE = _Kind(T_("a time zone such as Europe/Paris"), _is_timezone, str)


_OPERATOR_KEYS = {f.name: OPT_STR for f in dataclasses.fields(Operator)}
_COLLECTOR_KEYS = {
    "url": STR,
    "token": OPT_STR,
    "ca_bundle": OPT_STR,
    "retries": INT,
    "backoff_s": NUMBER,
    "timeout_s": NUMBER,
    "progress_interval_s": NUMBER,
    "allow_insecure_http": BOOL,
}
_SCALARS = {
    "lot": LOT,
    "customer": OPT_STR,
    "classification": OPT_STR,
    "post_classification": OPT_STR,
    "verify": _choice(*VERIFY),
    "exclude_serials": STR_LIST,
    "targets": STR_LIST,
    "state_dir": STR,
    "on_finish": _choice(*ON_FINISH),
    "shelf": BOOL,
    "hpa_reset": BOOL,
    "final_zero_pass": BOOL,
    "rewipe_certified": BOOL,
    "finish_display_seconds": INT,
    "language": _language(),
    "timezone": TIMEZONE,
    "seat": OPT_STR,
    "hold_until_delivered": BOOL,
}
_SECTIONS = {"collector": _COLLECTOR_KEYS, "operator": _OPERATOR_KEYS, "validator": _OPERATOR_KEYS}
# Free-form mappings whose content another stage interprets: policy per media type (the
# policy module checks the inner keys), audit thresholds (the audit module).
_MAPPINGS = ("policy", "thresholds", "psid")
_MEDIA = tuple(m.value for m in Media)
ALL_KEYS = (*_SCALARS, *_SECTIONS, *_MAPPINGS)


def _validate(raw: Any, where: str) -> tuple[dict, list[str]]:
    """Check a parsed YAML document; return the cleaned mapping and every problem found."""
    problems: list[str] = []
    if raw is None:
        return {}, problems
    if not isinstance(raw, dict):
        return {}, [f"{where} must be a mapping of keys (got {type(raw).__name__})"]
    clean: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key in _SCALARS:
            kind = _SCALARS[key]
            if not kind.check(value):
                problems.append(T_("{key} must be {kind} (got {value})", key=key, kind=kind.name, value=repr(value)))
            else:
                clean[key] = kind.convert(value)
        elif key in _SECTIONS:
            if value is None:
                clean[key] = None
                continue
            if not isinstance(value, dict):
                problems.append(T_("{key} must be a mapping (got {value})", key=key, value=repr(value)))
                continue
            sub: dict[str, Any] = {}
            for skey, svalue in value.items():
                full = f"{key}.{skey}"
                kind = _SECTIONS[key].get(str(skey))
                if kind is None:
                    problems.append(T_("unknown key {key}", key=full))
                elif not kind.check(svalue):
                    problems.append(T_("{key} must be {kind} (got {value})", key=full, kind=kind.name, value=repr(svalue)))
                else:
                    sub[str(skey)] = kind.convert(svalue)
            clean[key] = sub
        elif key == "policy":
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(T_("policy must be a mapping of media type to overrides (got {value})", value=repr(value)))
                continue
            pol: dict[str, dict] = {}
            for media, overrides in value.items():
                if str(media) not in _MEDIA:
                    problems.append(T_("unknown key policy.{media} (media types: {types})", media=media,
                                       types=", ".join(_MEDIA)))
                elif not isinstance(overrides, dict):
                    problems.append(T_("policy.{media} must be a mapping (got {value})", media=media, value=repr(overrides)))
                else:
                    pol[str(media)] = {str(k): v for k, v in overrides.items()}
            clean[key] = pol
        elif key == "psid":
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"psid must be a mapping of drive serial to PSID (got {value!r})")
                continue
            psids: dict[str, str] = {}
            for serial, psid in value.items():
                text = str(psid).replace("-", "").strip() if isinstance(psid, (str, int)) else ""
                # TCG PSIDs are 32 characters of upper-case letters and digits.
                if not re.fullmatch(r"[0-9A-Z]{32}", text):
                    problems.append(f"psid.{serial} must be the 32-character PSID printed on the drive's label")
                else:
                    psids[str(serial)] = text
            clean[key] = psids
        elif key == "thresholds":
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(T_("thresholds must be a mapping (got {value})", value=repr(value)))
                continue
            clean[key] = {str(k): v for k, v in value.items()}
        else:
            problems.append(T_("unknown key {key}", key=key))
    return clean, problems


def _set_dotted(doc: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def _kind_for(dotted: str) -> _Kind | None | str:
    """The kind of a dotted key, ``"free"`` for free-form mappings, None when unknown."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return _SCALARS.get(parts[0])
    if parts[0] in _SECTIONS and len(parts) == 2:
        return _SECTIONS[parts[0]].get(parts[1])
    if parts[0] == "thresholds" and len(parts) == 2:
        return "free"
    if parts[0] == "policy" and len(parts) == 3 and parts[1] in _MEDIA:
        return "free"
    return None


def parse_cmdline(cmdline: str) -> tuple[dict, list[str]]:
    """The ``ardoise.<key>=<value>`` words of a kernel command line, typed by the schema."""
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    try:
        words = shlex.split(cmdline)
    except ValueError:
        words = cmdline.split()
    for word in words:
        if not word.startswith("ardoise."):
            continue
        name, eq, text = word[len("ardoise."):].partition("=")
        kind = _kind_for(name)
        if kind is None:
            problems.append(T_("unknown key {key} (kernel command line)", key=name))
            continue
        if kind == "free":
            _set_dotted(overrides, name, _parse_scalar(text) if eq else True)
            continue
        if not eq:
            # A bare word switches a boolean on (``ardoise.shelf``); anything else needs a value.
            if kind is BOOL:
                _set_dotted(overrides, name, True)
            else:
                problems.append(T_("{key} needs a value (kernel command line: ardoise.{key}=...)", key=name))
            continue
        try:
            value = kind.parse(text)
        except ValueError:
            problems.append(T_("{key} must be {kind} (kernel command line: {text})", key=name, kind=kind.name,
                               text=repr(text)))
            continue
        if not kind.check(value):
            problems.append(T_("{key} must be {kind} (kernel command line: {text})", key=name, kind=kind.name,
                               text=repr(text)))
            continue
        _set_dotted(overrides, name, value)
    return overrides, problems


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- data partition


def _unescape_mount_field(text: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal.
    return (
        text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    )


def mountpoint_of(device: str, mounts_file: str = "/proc/self/mounts") -> Path | None:
    """Where ``device`` (any path resolving to it) is mounted, or None."""
    try:
        real = os.path.realpath(device)
        with open(mounts_file) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        source = _unescape_mount_field(fields[0])
        if source.startswith("/dev/") and os.path.realpath(source) == real:
            return Path(_unescape_mount_field(fields[1]))
    return None


def find_data_partition(*, mount: bool = True, by_label: Path = BY_LABEL) -> Path | None:
    """The mountpoint of the stick's data partition, mounting it if needed; None if absent.

    Which partition that is: ``discover.stick`` (labelled ARDOISE *and* on the medium the
    live system booted from; a donated disk labelled ARDOISE is not the stick)."""
    from agent.discover import stick

    choice = stick.find(by_label)
    log.info("data partition: %s", choice.why)
    if choice.device is None:
        return None
    device = choice.device
    existing = mountpoint_of(device)
    if existing is not None:
        return existing
    if not mount:
        return None
    PRIVATE_MOUNTPOINT.mkdir(parents=True, exist_ok=True)
    # FAT: no owners, so uid/gid options are moot; flush makes writes reach the stick sooner,
    # which matters when the technician pulls it right after the final screen; dirsync
    # makes each rename (every atomic write of a certificate ends in one) durable when it
    # returns, where FAT would otherwise leave the new name pointing at nothing for 30 s.
    result = commands.run(["mount", "-o", "rw,flush,dirsync", device, str(PRIVATE_MOUNTPOINT)], timeout=30)
    if not result.ok:
        raise ConfigError(
            f"cannot mount the {DATA_LABEL} data partition {device}: "
            + ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        )
    return PRIVATE_MOUNTPOINT


# --------------------------------------------------------------------------- loading


_INT, _FLOAT, _BOOL, _STR = (f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "str"))


def _text_keys() -> tuple[frozenset[str], frozenset[str]]:
    """Keys whose values are text, and keys whose values are lists of text."""
    text_kinds = (STR, OPT_STR, LOT)
    names = {k for k, kind in _SCALARS.items() if kind in text_kinds}
    for section in _SECTIONS.values():
        names |= {k for k, kind in section.items() if kind in text_kinds}
    lists = {k for k, kind in _SCALARS.items() if kind is STR_LIST}
    return frozenset(names), frozenset(lists)


class _ConfigLoader(yaml.SafeLoader):
    """``safe_load`` with two changes for a file technicians type by hand.

    A key given twice is refused, naming it: YAML keeps the last one silently, so a second
    ``collector:`` block further down would quietly replace the first. And a text value
    that YAML would read as a number or a boolean stays the text that was typed: ``lot:
    12`` is the lot "12", ``lot: 0012`` is not the octal 10, a serial ``0123`` is not 83."""

    TEXT, TEXT_LISTS = frozenset(), frozenset()

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            f"while reading the mapping at line {seen[key].line + 1}", seen[key],
                            f"key {key!r} is given twice", key_node.start_mark,
                        )
                    seen[key] = key_node.start_mark
                if key in self.TEXT:
                    _as_text(value_node)
                elif key in self.TEXT_LISTS and isinstance(value_node, yaml.SequenceNode):
                    for item in value_node.value:
                        _as_text(item)
        return super().construct_mapping(node, deep=deep)


def _as_text(node) -> None:
    if isinstance(node, yaml.ScalarNode) and node.style is None and node.tag in (_INT, _FLOAT, _BOOL):
        node.tag = _STR


_ConfigLoader.TEXT, _ConfigLoader.TEXT_LISTS = _text_keys()


def _read_yaml(path: Path) -> Any:
    try:
        # Windows editors add a BOM on the stick.
        text = read_bounded(path, CONFIG_MAX).decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(T_("config file {path} does not exist", path=path)) from None
    except OSError as exc:
        raise ConfigError(T_("cannot read config file {path}: {why}", path=path, why=exc.strerror)) from None
    except UnicodeDecodeError:
        raise ConfigError(T_("config file {path} is not UTF-8 text", path=path)) from None
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if mark:
            raise ConfigError(T_("config file {path} is not valid YAML at line {line}, column {column}: {problem}",
                                 path=path, line=mark.line + 1, column=mark.column + 1, problem=problem)) from None
        raise ConfigError(T_("config file {path} is not valid YAML: {problem}", path=path, problem=problem)) from None


def _stage_problems(doc: dict) -> list[str]:
    """Keys whose meaning belongs to another stage are checked by that stage's own code now,
    at start, rather than when the first disk is planned an hour later."""
    problems: list[str] = []
    checks: list[tuple[str, Any]] = []
    if doc.get("policy"):
        from agent.sanitize.policy import policy_for

        probe = Config(policy=doc["policy"])
        checks += [(f"policy.{m}", lambda m=m: policy_for(Media(m), probe)) for m in doc["policy"]]
    if doc.get("thresholds"):
        from agent.audit.verdict import as_thresholds

        checks.append(("thresholds", lambda: as_thresholds(doc["thresholds"])))
    for _name, check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _data_partition(by_label: Path) -> Path | None:
    try:
        return find_data_partition(by_label=by_label)
    except ConfigError:
        raise
    except ArdoiseError as exc:  # mount missing or failing: still a config problem
        raise ConfigError(f"cannot reach the {DATA_LABEL} data partition: {exc}") from None


# Network boot through Secure Boot (docs/netboot.md): signed GRUB loads a static menu by
# TFTP, so this boot's token and seat cannot be on the kernel line; the session asks the
# netboot service for them and leaves them here, in RAM, as more kernel-line words.
NETBOOT_WORDS = Path("/run/ardoise/netboot-words")


def _read_cmdline() -> str:
    text = ""
    for path in (Path("/proc/cmdline"), NETBOOT_WORDS):
        try:
            text += " " + path.read_text()
        except OSError:
            pass
    return text.strip()


def _resolve(value: str, base: Path | None) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def insecure_http(url: str) -> bool:
    """An http:// URL whose host is not this machine (loopback names and addresses)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it resolves to wherever DNS says


def load_config(
    path: str | os.PathLike | None = None,
    *,
    cmdline: str | None = None,
    by_label: Path = BY_LABEL,
) -> Config:
    """Load, merge and validate the config; raise one ``ConfigError`` naming every problem.

    ``cmdline`` is the kernel command line (read from /proc/cmdline when None; pass "" to
    ignore it). ``state_dir`` is, in order: the key, ``$ARDOISE_STATE_DIR``, the data
    partition's ``ardoise/`` directory, ``/var/lib/ardoise``.
    """
    data_partition: Path | None = None
    source: str | None = None
    raw: Any = None
    if path is not None:
        file = Path(path)
        raw = _read_yaml(file)
        source = str(file)
    else:
        data_partition = _data_partition(by_label)
        if data_partition is not None and (data_partition / CONFIG_NAME).is_file():
            file = data_partition / CONFIG_NAME
            raw = _read_yaml(file)
            source = str(file)

    doc, problems = _validate(raw, source or "config")
    over, cmd_problems = parse_cmdline(_read_cmdline() if cmdline is None else cmdline)
    problems += cmd_problems
    doc = _merge(doc, over)
    base = Path(source).parent if source else None

    collector = doc.get("collector")
    if isinstance(collector, dict) and collector and "url" not in collector:
        problems.append(T_("collector.url is required when a collector is configured"))
    elif isinstance(collector, dict) and "url" in collector:
        url = collector["url"]
        if not (url.startswith("https://") or url.startswith("http://")):
            problems.append(T_("collector.url must start with https:// or http:// (got {value})", value=repr(url)))
        elif insecure_http(url) and collector.get("allow_insecure_http") is not True:
            problems.append(T_(
                "collector.url {url} is http:// to another machine: the station's token would cross the "
                "network in clear; use https://, or set collector.allow_insecure_http: true on a network you trust",
                url=url))
    problems += _stage_problems(doc)
    if problems:
        listed = i18n.join("; ", problems)
        message = T_("config in {source}: {problems}", source=source, problems=listed) if source else \
            T_("config: {problems}", problems=listed)
        raise ConfigError(message, problems=problems)

    cfg = Config.default()
    cfg.source = source
    if collector:
        col = CollectorConfig(**collector)
        col.url = col.url.rstrip("/")
        if col.ca_bundle:
            col.ca_bundle = str(_resolve(col.ca_bundle, base))
        cfg.collector = col
    if doc.get("operator"):
        cfg.operator = Operator(**doc["operator"])
    if doc.get("validator"):
        cfg.validator = Operator(**doc["validator"])
    for key in _SCALARS:
        if key in doc and key != "state_dir":
            setattr(cfg, key, doc[key])
    cfg.policy = doc.get("policy", {}) or {}
    cfg.thresholds = doc.get("thresholds", {}) or {}
    cfg.psid = doc.get("psid", {}) or {}

    if path is not None and "state_dir" not in doc and not os.environ.get(STATE_DIR_ENV):
        data_partition = _data_partition(by_label)
    cfg.data_partition = data_partition
    if "state_dir" in doc:
        cfg.state_dir = _resolve(doc["state_dir"], base)
    elif os.environ.get(STATE_DIR_ENV):
        cfg.state_dir = Path(os.environ[STATE_DIR_ENV])
    elif data_partition is not None:
        cfg.state_dir = data_partition / "ardoise"
    return cfg
