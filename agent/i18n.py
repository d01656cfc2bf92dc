"""Languages: gettext catalogs, choosing a language, and what a reader of it expects.

One gettext domain, ``ardoise``, serves the agent and the collector; its catalogs live in
``agent/locale/<lang>/LC_MESSAGES/ardoise.po`` (source) and ``.mo`` (compiled, committed;
a test holds them equal). The source strings are English, so English needs no
translation; a language is offered as soon as its ``.mo`` exists: adding Spanish or German
is one catalog (docs/i18n.md).

How to translate:

- The agent has one language per process: :func:`use_language` once at start (the CLI does
  it from the environment, then :func:`use_config`), then ``_("...")`` anywhere. What may be
  stored (an error's message, a reason in a record) is a ``T_`` text: English where it is
  stored, translated where it is shown (:func:`localize`)::

      from agent.i18n import T_, N_, _
      say(_("created a new station key in {dir}").format(dir=state))
      raise DeviceError(T_("{path} is not a block device", path=path))
      STATES = {"wiping": N_("wiping")}   # marked here, translated where shown: _(STATES[s])

- The second pass over the TUI and the PDFs needs nothing more; for example::

      from agent import i18n
      from agent.i18n import _

      lang = i18n.current()  # the agent's language and time zone (the collector's reader's)
      table.add_row(_("Capacity"), lang.size(disk.size_bytes))            # rich, in the TUI
      status = i18n.localize(disk.reasons[0])                             # a stored reason
      pdf.cell(text=_("Erasure certificate"))                             # fpdf2
      pdf.cell(text=_("Completed {when}").format(when=lang.when(san["finished_at"])))
      pdf.cell(text=_("NIST SP 800-88 category: {category}").format(
          category=lang.nist_category(san["category"])))

  Sentences stay whole with named placeholders; never an f-string inside ``_()``, and no
  ``_`` as a throwaway variable in a module that translates.

- A server answers each request in its reader's language: it renders inside
  ``with speaking(lang):`` (a context variable: other requests are not affected), or uses
  a :class:`Language`'s methods directly::

      lang = Language.get(negotiate(parse_accept_language(header)), "Europe/Paris")
      lang.gettext("Certificates"), lang.when(received_at), lang.size(67_100_000)

What a reader expects, for the PDFs and screens (``lang`` is a code such as "fr")::

      when(instant, "fr", "Europe/Paris")  -> "1 décembre 2026 à 19:26 (heure de Paris)"
      size(67_100_000, "fr")              -> "67,1 Mo"     (size(..., binary=True): "64,0 Mio")
      nist_category("clear", "fr")        -> "« Effacement (Clear) »"
      outcome_label("failed", "fr")       -> "échec"      phase_label("write", "fr") -> "écriture"

The JSON records stay language-neutral: they keep codes and UTC instants, and only these
functions turn them into words.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, get_timezone_location
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

DOMAIN = "ardoise"
LOCALE_DIR = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"  # the language the strings are written in
DEFAULT_TIMEZONE = "Europe/Paris"
KERNEL_WORD = "ardoise.language="


def available_languages(locale_dir: Path = LOCALE_DIR) -> tuple[str, ...]:
    """The source language and every language with a compiled catalog, sorted."""
    found = {SOURCE_LANGUAGE}
    if locale_dir.is_dir():
        found |= {d.name for d in locale_dir.iterdir() if (d / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()}
    return tuple(sorted(found))


def _base(tag: str) -> str:
    """``fr_FR.UTF-8``, ``fr-BE``, ``FR`` -> ``fr``; ``C`` and ``POSIX`` -> ``en``."""
    tag = tag.strip().split(".")[0].split("@")[0]
    if tag.upper() in ("C", "POSIX"):
        return SOURCE_LANGUAGE
    return re.split(r"[-_]", tag)[0].lower()


def negotiate(candidates: Iterable[str], default: str = SOURCE_LANGUAGE) -> str:
    """The first candidate (best first) we have a catalog for, by its base language."""
    offered = available_languages()
    for tag in candidates:
        if tag and _base(tag) in offered:
            return _base(tag)
    return default


def parse_accept_language(header: str | None) -> list[str]:
    """An ``Accept-Language`` header's tags, best first (by q, then by order)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"q\s*=\s*([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            ranked.append((-q, i, tag))
    return [tag for _q, _i, tag in sorted(ranked)]


def from_environment(env: Mapping[str, str] | None = None, cmdline: str | None = None) -> str:
    """The agent's language before any config is read: the kernel word
    ``ardoise.language=`` (the boot menu sets it), else the POSIX order
    ``LC_ALL`` > ``LC_MESSAGES`` > ``LANG`` (so ``LANG=fr_FR.UTF-8 ardoise ...`` speaks French)."""
    env = os.environ if env is None else env
    if cmdline is None:
        try:
            cmdline = Path("/proc/cmdline").read_text()
        except OSError:
            cmdline = ""
    for word in cmdline.split():
        if word.startswith(KERNEL_WORD):
            return negotiate([word[len(KERNEL_WORD):]])
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(var):
            return negotiate([env[var]])
    return SOURCE_LANGUAGE


@lru_cache(maxsize=None)
def translations(lang: str) -> NullTranslations:
    if lang == SOURCE_LANGUAGE:
        return NullTranslations()
    t = Translations.load(str(LOCALE_DIR), [lang], DOMAIN)
    return t


# --------------------------------------------------------------------------- formats


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:  # the records and the database keep naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value


def when(value: datetime | str | None, lang: str, tz: str | None = DEFAULT_TIMEZONE, *, empty: str = "—") -> str:
    """An instant in the reader's words and time zone: ``1 décembre 2026 à 19:26 (heure de
    Paris)``, ``1 December 2026 at 19:26 (Paris time)``. The zone is named after its city
    so the reader knows which clock it is; UTC is said as such."""
    if value is None or value == "":
        return empty
    try:
        instant = _instant(value)
    except ValueError:
        return str(value)
    zone = _zone(tz)
    local = instant.astimezone(zone)
    t = translations(lang)
    date = format_date(local.date(), "long", locale=lang)
    clock = local.strftime("%H:%M")  # the 24-hour clock French and the workshops read
    if zone.key in ("UTC", "Etc/UTC"):
        return t.gettext("{date} at {time} (UTC)").format(date=date, time=clock)
    city = get_timezone_location(zone.key, locale=lang, return_city=True)
    return t.gettext("{date} at {time} ({city} time)").format(date=date, time=clock, city=city)


_SI = ("", "k", "M", "G", "T", "P")
_IEC = ("", "Ki", "Mi", "Gi", "Ti", "Pi")


def size(n: int | float | None, lang: str, *, binary: bool = False, empty: str = "—") -> str:
    """A size with one decimal in the reader's notation: ``67,1 Mo`` / ``67.1 MB``. Decimal
    (SI, powers of 1000) by default like the collector, binary (IEC, ``Mio``/``MiB``) when
    asked, like the agent's progress lines; the byte symbol comes from the catalog (o, B)."""
    if n is None:
        return empty
    step, prefixes = (1024, _IEC) if binary else (1000, _SI)
    value = float(n)
    i = 0
    while abs(value) >= step and i < len(prefixes) - 1:
        value /= step
        i += 1
    byte = translations(lang).pgettext("byte symbol", "B")
    number = format_decimal(value, "#,##0" if i == 0 else "#,##0.0", locale=lang)
    return f"{number} {prefixes[i]}{byte}"


def number(n: int | float, lang: str) -> str:
    return format_decimal(n, locale=lang)


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


def NC_(context: str, message: str) -> str:
    """Marks a string with its context for extraction (a word that is also a code, such as
    a disk state ``failed``); shown with ``pgettext(context, message)``."""
    return message


class Text(str):
    """English text that stays English where it is stored (records, logs, JSON) and is shown
    in the reader's language. It *is* the English string, so code that stores or compares
    it is unchanged; :func:`localize` translates it for a screen. For errors raised below the
    CLI, whose message may end up in a signed record::

        raise DeviceError(T_("{path} is not a block device", path=path))
        str(exc)            -> "/dev/null is not a block device"          (records, --json)
        localize(exc.message) -> "/dev/null n'est pas un périphérique bloc" (the French screen)
    """

    template: str
    params: dict

    def __new__(cls, template: str, **params: object) -> "Text":
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template, text.params = template, params
        return text

    def __getnewargs_ex__(self):  # copies and pickles rebuild it from its parts
        return (self.template,), self.params

    def in_language(self, lang: "Language") -> str:
        translated = lang.gettext(self.template)
        if not self.params:
            return translated
        return translated.format(**{k: localize(v, lang) for k, v in self.params.items()})


class Joined(Text):
    """Texts joined by a separator, each shown in the reader's language (a list of reasons)."""

    def __new__(cls, separator: str, items) -> "Joined":
        items = list(items)
        text = str.__new__(cls, separator.join(str(i) for i in items))
        text.template, text.params = str(text), {}
        text.separator, text.items = separator, items
        return text

    def __getnewargs_ex__(self):  # copies and pickles rebuild it from its parts
        return (self.separator, self.items), {}

    def in_language(self, lang: "Language") -> str:
        return self.separator.join(localize(i, lang) for i in self.items)


def join(separator: str, items) -> Joined:
    return Joined(separator, items)


def T_(template: str, **params: object) -> Text:
    """A message kept in English and shown translated (:class:`Text`); extracted like ``_``."""
    return Text(template, **params)


def localize(text: object, lang: "Language | None" = None) -> str:
    """``text`` in ``lang`` (the agent's language by default) when it is a :class:`Text`;
    anything else as it is."""
    if isinstance(text, Text):
        return text.in_language(lang or current())
    return str(text)


# A stored sentence (a note, a reason in a signed record) is English text that was made
# from a ``T_`` template; the record keeps the words, not the template. To show it in
# another language, it is matched against the catalog's templates: the literal words must
# match exactly, each ``{name}`` takes the text between them. Templates with little literal
# text ("{where}: {error}") would match anything and are not used.
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MIN_LITERAL_LETTERS = 8


@lru_cache(maxsize=None)
def _templates(lang: str) -> tuple[tuple[re.Pattern, str], ...]:
    catalog = getattr(translations(lang), "_catalog", {}) or {}
    out = []
    for msgid, msgstr in catalog.items():
        if not isinstance(msgid, str) or "\x04" in msgid or not msgstr or msgstr == msgid:
            continue
        names = _PLACEHOLDER.findall(msgid)
        if not names or len(set(names)) != len(names):
            continue
        literal = _PLACEHOLDER.sub("", msgid)
        if sum(c.isalpha() for c in literal) < _MIN_LITERAL_LETTERS:
            continue
        parts = _PLACEHOLDER.split(msgid)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(p.replace("{{", "{").replace("}}", "}")) if i % 2 == 0 else f"(?P<{p}>.+?)"
                        for i, p in enumerate(parts))
        out.append((re.compile(regex, re.S), msgstr, len(literal)))
    # The most specific template first: "a (b) c: {x}" before "a {x}".
    return tuple((rx, msgstr) for rx, msgstr, _n in sorted(out, key=lambda t: -t[2]))


def from_template(text: str, lang: "Language") -> str | None:
    """``text`` in ``lang`` when it was made from a catalog template, else None. The values
    put in it (a device, an error) are shown as stored; each is itself looked up in the
    catalog, so a reason inside a reason is translated too."""
    if lang.code == SOURCE_LANGUAGE:
        return None
    for rx, msgstr in _templates(lang.code):
        m = rx.fullmatch(text)
        if m:
            values = {k: (lang.gettext(v) if v else v) for k, v in m.groupdict().items()}
            try:
                return msgstr.format(**values)
            except (KeyError, IndexError, ValueError):
                return None
    return None


# NIST SP 800-88 keeps its English names (they are what auditors search for); French gets a
# gloss around them, from the catalog.
NIST_CATEGORIES = ("clear", "purge", "destroy")
OUTCOMES = ("success", "failed", "interrupted")


def nist_category(code: str | None, lang: str, *, empty: str = "—") -> str:
    """``clear`` -> ``Clear`` in English, ``« Effacement (Clear) »`` in French."""
    if not code:
        return empty
    t = translations(lang)
    names = {"clear": t.pgettext("NIST category", "Clear"), "purge": t.pgettext("NIST category", "Purge"),
             "destroy": t.pgettext("NIST category", "Destroy")}
    return names.get(code.lower(), code)


def outcome_label(code: str | None, lang: str, *, empty: str = "—") -> str:
    """A sanitization outcome code in words: ``failed`` -> ``échec``."""
    if not code:
        return empty
    t = translations(lang)
    names = {"success": t.pgettext("outcome", "success"), "failed": t.pgettext("outcome", "failed"),
             "interrupted": t.pgettext("outcome", "interrupted")}
    return names.get(code, code)


def phase_label(code: str | None, lang: str, *, empty: str = "—") -> str:
    """A wipe's phase code (progress records) in words: ``write`` -> ``écriture``."""
    if not code:
        return empty
    t = translations(lang)
    names = {"write": t.pgettext("phase", "write"), "verify": t.pgettext("phase", "verify"),
             "certify": t.pgettext("phase", "certify"), "done": t.pgettext("phase", "done")}
    return names.get(code, code)


def verification_label(method: str | None, status: str | None, lang: str) -> tuple[str, str]:
    """A read-back verification's method and status codes in words: (``sample``, ``passed``)
    -> (``par échantillons``, ``réussie``)."""
    t = translations(lang)
    methods = {"full": t.pgettext("verification method", "full"),
               "sample": t.pgettext("verification method", "sample"),
               "none": t.pgettext("verification method", "none"),
               "canary": t.pgettext("verification method", "canary")}
    statuses = {"passed": t.pgettext("verification status", "passed"),
                "failed": t.pgettext("verification status", "failed"),
                "not-run": t.pgettext("verification status", "not-run"),
                "error": t.pgettext("verification status", "error")}
    return methods.get(method or "", method or "—"), statuses.get(status or "", status or "—")


# Codes of the signed record that a reader meets (media type, bus, method, technique, overwrite
# pattern). The record keeps the code; a page shows ``pgettext(context, code)``. English
# shows the code itself where it is a word or an identifier the config and the CLI use
# (``hdd``, ``overwrite:zero``); another language shows the catalog's words for it.
MEDIA_TYPES = (NC_("media type", "hdd"), NC_("media type", "ssd"), NC_("media type", "nvme"),
               NC_("media type", "flash"), NC_("media type", "optical"), NC_("media type", "virtual"),
               NC_("media type", "unknown"))
TRANSPORTS = (NC_("transport", "nvme"), NC_("transport", "sata"), NC_("transport", "sas"),
              NC_("transport", "scsi"), NC_("transport", "usb"), NC_("transport", "mmc"),
              NC_("transport", "virtio"), NC_("transport", "loop"), NC_("transport", "ram"),
              NC_("transport", "file"), NC_("transport", "unknown"))
# Every step a plan can hold (agent/sanitize/policy.py), and the overwrite methods
# (agent/sanitize/methods.py) as ``overwrite:<name>``.
SANITIZE_METHODS = (
    NC_("sanitize method", "overwrite:zero"), NC_("sanitize method", "overwrite:random"),
    NC_("sanitize method", "overwrite:two-pass"), NC_("sanitize method", "overwrite:dod-3pass"),
    NC_("sanitize method", "overwrite:hmg-is5-enhanced"),
    NC_("sanitize method", "nvme-sanitize-crypto"), NC_("sanitize method", "nvme-sanitize-block"),
    NC_("sanitize method", "nvme-format-crypto"), NC_("sanitize method", "nvme-format-user-data"),
    NC_("sanitize method", "ata-sanitize-crypto"), NC_("sanitize method", "ata-sanitize-block"),
    NC_("sanitize method", "ata-sanitize-overwrite"), NC_("sanitize method", "ata-security-erase-enhanced"),
    NC_("sanitize method", "ata-security-erase"), NC_("sanitize method", "ata-security-recover"),
    NC_("sanitize method", "scsi-sanitize-crypto"), NC_("sanitize method", "scsi-sanitize-block"),
    NC_("sanitize method", "scsi-sanitize-overwrite"), NC_("sanitize method", "tcg-psid-revert"),
    NC_("sanitize method", "mmc-discard-sanitize"), NC_("sanitize method", "mmc-boot-writable"),
    NC_("sanitize method", "blkdiscard-secure"), NC_("sanitize method", "hpa-reset"),
    NC_("sanitize method", "unfreeze"), NC_("sanitize method", "none"),
)
# The overwrite methods in a few letters, for the narrow method column of the screen.
SHORT_OVERWRITE_METHODS = (
    NC_("sanitize method, short", "zero"), NC_("sanitize method, short", "random"),
    NC_("sanitize method, short", "two-pass"), NC_("sanitize method, short", "dod-3pass"),
    NC_("sanitize method, short", "hmg-is5-enhanced"),
)
# NIST SP 800-88's technique names, as agent/certify/payload.py technique_of() writes them.
TECHNIQUES = (
    NC_("NIST technique", "Overwrite"), NC_("NIST technique", "Cryptographic Erase"),
    NC_("NIST technique", "Block Erase"), NC_("NIST technique", "Cryptographic Erase (TCG PSID revert)"),
    NC_("NIST technique", "eMMC Sanitize (after a discard of the whole user area)"),
    NC_("NIST technique", "Secure Erase (ATA Security Erase Unit)"),
    NC_("NIST technique", "Format NVM (User Data Erase)"),
    NC_("NIST technique", "Secure Discard (eMMC/SD secure trim)"),
)
# A pass's pattern (agent/sanitize/methods.py PassSpec.label); "0x55"-like bytes stay as they are.
PATTERNS = (NC_("overwrite pattern", "zero"), NC_("overwrite pattern", "ones"), NC_("overwrite pattern", "random"))


def _code_label(context: str, codes: tuple[str, ...], code: str | None, lang: str, empty: str) -> str:
    if not code:
        return empty
    return translations(lang).pgettext(context, code) if code in codes else code


def media_label(code: str | None, lang: str, *, empty: str = "—") -> str:
    """A media type code in words: ``virtual`` -> ``disque virtuel``."""
    return _code_label("media type", MEDIA_TYPES, code, lang, empty)


def transport_label(code: str | None, lang: str, *, empty: str = "—") -> str:
    """A bus code in words: ``loop`` -> ``périphérique loop``, ``sata`` -> ``SATA``."""
    return _code_label("transport", TRANSPORTS, code, lang, empty)


def technique_label(technique: str | None, lang: str, *, empty: str = "—") -> str:
    """A NIST technique in words: ``Overwrite`` -> ``réécriture``."""
    return _code_label("NIST technique", TECHNIQUES, technique, lang, empty)


def pattern_label(pattern: str | None, lang: str, *, empty: str = "—") -> str:
    """An overwrite pass's pattern: ``zero`` -> ``zéros``; a byte (``0x55``) as it is."""
    return _code_label("overwrite pattern", PATTERNS, pattern, lang, empty)


def method_label(code: str | None, lang: str, *, empty: str = "—") -> str:
    """A sanitize method id in words: ``overwrite:zero`` -> ``réécriture, une passe de zéros``.
    English keeps the id (what ``policy.steps`` and ``--method`` take); a user pattern
    ``overwrite:pattern:55`` is said with its bytes."""
    if not code:
        return empty
    if code in SANITIZE_METHODS:
        return translations(lang).pgettext("sanitize method", code)
    m = re.fullmatch(r"overwrite:pattern:(?:0x)?([0-9A-Fa-f]+)", code)
    if m and lang != SOURCE_LANGUAGE:
        return translations(lang).gettext("overwrite with the repeated pattern 0x{hex}").format(hex=m[1].lower())
    return code


def method_short_label(code: str | None, lang: str, *, empty: str = "-") -> str:
    """A method for a narrow column: an overwrite by its name alone (``zero``, « zéros »),
    the pass count beside it says it is an overwrite; any other method as :func:`method_label`."""
    if not code:
        return empty
    name = code.removeprefix("overwrite:")
    if name != code and name in SHORT_OVERWRITE_METHODS:
        return translations(lang).pgettext("sanitize method, short", name)
    if name != code and lang == SOURCE_LANGUAGE:
        return name
    return method_label(code, lang, empty=empty)


def language_name(lang: str) -> str:
    """The language's name in itself, capitalised: Français, English."""
    name = Locale.parse(lang).get_display_name(lang) or lang
    return name[:1].upper() + name[1:]


@dataclass(frozen=True)
class Language:
    """One reader's language and time zone, for a server that answers many readers."""

    code: str
    timezone: str = DEFAULT_TIMEZONE

    @classmethod
    def get(cls, code: str, timezone: str = DEFAULT_TIMEZONE) -> "Language":
        return cls(code if code in available_languages() else SOURCE_LANGUAGE, timezone)

    def gettext(self, message: str) -> str:
        return translations(self.code).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return translations(self.code).ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return translations(self.code).pgettext(context, message)

    def when(self, value, empty: str = "—") -> str:
        return when(value, self.code, self.timezone, empty=empty)

    def size(self, n, *, binary: bool = False) -> str:
        return size(n, self.code, binary=binary)

    def decimal(self, x: float, digits: int = 1) -> str:
        return format_decimal(x, "#,##0." + "0" * digits if digits else "#,##0", locale=self.code)

    def nist_category(self, code, empty: str = "—") -> str:
        return nist_category(code, self.code, empty=empty)

    def outcome(self, code, empty: str = "—") -> str:
        return outcome_label(code, self.code, empty=empty)

    def phase(self, code, empty: str = "—") -> str:
        return phase_label(code, self.code, empty=empty)

    def verification(self, method, status) -> tuple[str, str]:
        return verification_label(method, status, self.code)

    def media(self, code, empty: str = "—") -> str:
        return media_label(code, self.code, empty=empty)

    def transport(self, code, empty: str = "—") -> str:
        return transport_label(code, self.code, empty=empty)

    def technique(self, technique, empty: str = "—") -> str:
        return technique_label(technique, self.code, empty=empty)

    def pattern(self, pattern, empty: str = "—") -> str:
        return pattern_label(pattern, self.code, empty=empty)

    def method(self, code, empty: str = "—") -> str:
        return method_label(code, self.code, empty=empty)

    def method_short(self, code, empty: str = "-") -> str:
        return method_short_label(code, self.code, empty=empty)


# --------------------------------------------------------------------------- the current language

_current = Language(SOURCE_LANGUAGE)  # the process's: the agent has one reader
# A block of code rendering for another reader (the collector's request, a PDF in a lot's
# language): set with ``speaking``; threads started inside it do not inherit it.
_speaking: ContextVar[Language | None] = ContextVar("ardoise_language", default=None)


def use_language(code: str | None, timezone: str | None = None) -> Language:
    """Sets the agent's language (and time zone) for the rest of the process."""
    global _current
    _current = Language.get(code or _current.code, timezone or _current.timezone)
    return _current


def current() -> Language:
    """The language ``_`` translates into: the ``speaking`` block's, else the process's."""
    return _speaking.get() or _current


@contextmanager
def speaking(lang: Language) -> Iterator[Language]:
    """Within the block (this thread or task only), ``_`` and ``current()`` speak ``lang``.
    The collector wraps each page and each PDF it renders for a reader::

        with i18n.speaking(Language.get("fr")):
            data = render_certificate_pdf(payload, digest, key_id)  # French, whatever the process speaks
    """
    token = _speaking.set(lang)
    try:
        yield lang
    finally:
        _speaking.reset(token)


def _(message: str) -> str:
    """Translates into the current language."""
    return current().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return current().ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return current().pgettext(context, message)


# argparse's own words (usage, errors, section titles) go through the module-level ``_`` it
# imported from gettext; these are the ones a person meets, so our catalog carries them.
ARGPARSE_MESSAGES = (
    N_("usage: "), N_("%(prog)s: error: %(message)s\n"), N_("positional arguments"), N_("options"),
    N_("show this help message and exit"), N_("show program's version number and exit"),
    N_("the following arguments are required: %s"), N_("unrecognized arguments: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"), N_("argument %(argument_name)s: %(message)s"),
    N_("expected one argument"), N_("invalid %(type)s value: %(value)r"),
    N_("ambiguous option: %(option)s could match %(matches)s"), N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
)


def translate_argparse() -> None:
    """Makes argparse speak the agent's current language (it looks ``_`` up at call time)."""
    import argparse

    argparse._ = lambda message: current().gettext(message)  # type: ignore[attr-defined]
    argparse.ngettext = lambda s, p, n: current().ngettext(s, p, n)  # type: ignore[attr-defined]


def use_config(config) -> Language:
    """After a config is read: its ``language`` and ``timezone`` keys (the kernel words
    ``ardoise.language=`` and ``ardoise.timezone=`` included) win over the environment."""
    return use_language(getattr(config, "language", None), getattr(config, "timezone", None))


def agent_language() -> str:
    """The language the agent will speak on this machine: the config's ``language`` (or the
    kernel word), else the locale. Errors in the config are the agent's to report: here
    they only mean "no language from the config"."""
    from agent.config import load_config
    from agent.errors import ArdoiseError

    try:
        configured = load_config().language
    except ArdoiseError:
        configured = None
    return configured or from_environment()


if __name__ == "__main__":
    # ``python3 -m agent.i18n``: the image's session script asks which keymap to load.
    print(agent_language())
