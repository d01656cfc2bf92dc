"""The words printed on a label, in each language a label is printed in.

They are entries of the project's gettext catalog (agent/locale, context "label"), looked
up through ``word``; the keys are what the label code asks for.
"""

from __future__ import annotations

from agent import i18n
from agent.i18n import NC_
from server_stub.errors import Malformed

LANGUAGES = ("fr", "en")

# Short: a 62 mm label has room for a dozen characters before each value.
WORDS: dict[str, str] = {
    "cpu": NC_("label", "CPU"),
    "ram": NC_("label", "RAM"),
    "storage": NC_("label", "Storage"),
    "battery": NC_("label", "Battery health"),
    "battery_none": NC_("label", "none"),
    "battery_unknown": NC_("label", "not measured"),
    "unknown": NC_("label", "unknown"),
    "no_storage": NC_("label", "no drive"),
    "erased": NC_("label", "Data erased"),
    "not_erased": NC_("label", "NOT ERASED"),
    "no_certificate": NC_("label", "No erasure certificate"),
    "date": NC_("label", "Date"),
    "serial": NC_("label", "S/N"),
}


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise Malformed(f"language must be one of {', '.join(LANGUAGES)}")
    return language


def word(key: str, language: str) -> str:
    return i18n.translations(check_language(language)).pgettext("label", WORDS[key])


# Decimal units as drives are sold (a "256 GB" SSD); French writes octets.
_UNITS = {"en": ("GB", "TB"), "fr": ("Go", "To")}


def _number(value: float, language: str) -> str:
    text = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return text.replace(".", ",") if language == "fr" else text


def ram_text(ram_bytes: int | None, language: str) -> str:
    if not ram_bytes:
        return word("unknown", language)
    gib = ram_bytes / (1 << 30)
    # Memory is sold in binary gigabytes; MemTotal (7.6 GiB of an 8 GiB machine) rounds up.
    value = round(gib) if gib >= 2 else round(gib, 1)
    return f"{_number(value, language)} {_UNITS[language][0]}"


def size_text(size_bytes: int | None, language: str) -> str:
    if not size_bytes:
        return "?"
    gb, tb = _UNITS[language]
    if size_bytes >= 10**12:
        return f"{_number(round(size_bytes / 10**12, 1), language)} {tb}"
    return f"{_number(round(size_bytes / 10**9), language)} {gb}"


_MEDIA = {"ssd": "SSD", "hdd": "HDD", "nvme": "NVMe", "flash": "eMMC/flash"}


def storage_text(drives, language: str) -> str:
    if not drives:
        return word("no_storage", language)
    parts = []
    for d in drives:
        media = _MEDIA.get((d.media or "").lower())
        parts.append(size_text(d.size_bytes, language) + (f" {media}" if media else ""))
    return " + ".join(parts)


def battery_text(percents, language: str) -> str:
    if percents is None:
        return word("battery_unknown", language)
    if not percents:
        return word("battery_none", language)
    sep = "\u00a0%" if language == "fr" else "%"  # French puts a (no-break) space before %
    # Health is what the battery holds now against its design capacity (agent/audit/machine.py).
    return ", ".join(f"{p}{sep}" for p in percents)


def erasure_text(erasure: str, category, language: str) -> str:
    """The erasure line: the result code, with the NIST SP 800-88 category reached."""
    if erasure == "erased":
        from agent import outcome
        return f"{word('erased', language)} · NIST {outcome.describe_category(category)}"
    return word(erasure, language)
