"""Numbers for people: sizes, frequencies, durations, percentages.

One place for every surface (the screen, the plain log, the PDFs), so that a later
translation changes the wording and the number format here only. Each function returns a
whole phrase built from a format string with named placeholders, never from fragments.
"""

from __future__ import annotations

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _three_digits(value: float) -> str:
    # Three significant digits at most (500, 16.0, 8.00): narrow columns, no false precision.
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def size(n: float, *, binary: bool = False) -> str:
    """``67.1 MB`` (powers of 1000, as drives are sold) or ``23.5 GiB`` (powers of 1024, as RAM is)."""
    units, step = (_BINARY, 1024) if binary else (_DECIMAL, 1000)
    value = float(n)
    for unit in units:
        if abs(value) < step or unit == units[-1]:
            if unit == "B":
                return "{value} {unit}".format(value=f"{value:.0f}", unit=unit)
            return "{value} {unit}".format(value=_three_digits(value), unit=unit)
        value /= step
    raise AssertionError("unreachable")


def rate(bytes_per_second: float) -> str:
    return "{size}/s".format(size=size(bytes_per_second))


def frequency(hz: float) -> str:
    """``2.6 GHz``: a processor's clock, one decimal is what a label shows."""
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= scale:
            return "{value} {unit}".format(value=f"{hz / scale:.1f}", unit=unit)
    return "{value} Hz".format(value=f"{hz:.0f}")


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min``, ``45 s``: rounded to what a person plans with."""
    if seconds is None or seconds < 0:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return "{seconds} s".format(seconds=s)
    h, rem = divmod(s, 3600)
    m = rem // 60
    if h:
        return "{hours} h {minutes:02d} min".format(hours=h, minutes=m)
    return "{minutes} min".format(minutes=m)


def eta(seconds: float | None) -> str:
    """The time left on a running wipe, labelled."""
    if seconds is None or seconds < 0:
        return "ETA unknown"
    return "ETA {duration}".format(duration=duration(seconds))


def percent(fraction: float) -> str:
    return "{value}%".format(value=f"{max(0.0, min(1.0, fraction)) * 100:.0f}")
