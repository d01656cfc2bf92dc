"""Numbers for people: sizes, frequencies, durations, percentages.

One place for every surface (the screen, the plain log, the PDFs). Each function returns a
whole phrase built from a catalog string with named placeholders, never from fragments,
in the current language (agent.i18n): ``67.1 MB`` / ``67,1 Mo``, ``ETA 3 min`` /
``reste ~3 min``, ``75%`` / ``75 %``.
"""

from __future__ import annotations

from babel.numbers import format_decimal

from agent import i18n
from agent.i18n import _, pgettext

_DECIMAL = ("", "k", "M", "G", "T", "P")
_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi")


def _number(value: float, digits: int) -> str:
    pattern = "0." + "0" * digits if digits else "0"
    return format_decimal(value, pattern, locale=i18n.current().code)


def _three_digits(value: float) -> str:
    # Three significant digits at most (500, 16.0, 8.00): narrow columns, no false precision.
    if abs(value) >= 100:
        return _number(value, 0)
    return _number(value, 1) if abs(value) >= 10 else _number(value, 2)


def size(n: float, *, binary: bool = False) -> str:
    """``67.1 MB`` (powers of 1000, as drives are sold) or ``23.5 GiB`` (powers of 1024, as
    RAM is); in French ``67,1 Mo``, ``23,5 Gio`` (the byte symbol comes from the catalog)."""
    prefixes, step = (_BINARY, 1024) if binary else (_DECIMAL, 1000)
    byte = pgettext("byte symbol", "B")
    value = float(n)
    for prefix in prefixes:
        if abs(value) < step or prefix == prefixes[-1]:
            number = _number(value, 0) if not prefix else _three_digits(value)
            return _("{value} {unit}").format(value=number, unit=prefix + byte)
        value /= step
    raise AssertionError("unreachable")


def rate(bytes_per_second: float) -> str:
    return _("{size}/s").format(size=size(bytes_per_second))


def frequency(hz: float) -> str:
    """``2.6 GHz``: a processor's clock, one decimal is what a label shows."""
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= scale:
            return _("{value} {unit}").format(value=_number(hz / scale, 1), unit=unit)
    return _("{value} {unit}").format(value=_number(hz, 0), unit="Hz")


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min``, ``45 s``: rounded to what a person plans with."""
    if seconds is None or seconds < 0:
        return _("unknown")
    s = int(round(seconds))
    if s < 60:
        return _("{seconds} s").format(seconds=s)
    h, rem = divmod(s, 3600)
    m = rem // 60
    if h:
        return _("{hours} h {minutes} min").format(hours=h, minutes=f"{m:02d}")
    return _("{minutes} min").format(minutes=m)


def eta(seconds: float | None) -> str:
    """The time left on a running wipe, labelled: ``ETA 3 min``, ``reste ~3 min``."""
    if seconds is None or seconds < 0:
        return _("ETA unknown")
    return _("ETA {duration}").format(duration=duration(seconds))


def percent(fraction: float) -> str:
    """``75%``; French puts a no-break space before the sign (``75 %``)."""
    return _("{value}%").format(value=_number(max(0.0, min(1.0, fraction)) * 100, 0))
