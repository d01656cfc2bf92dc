"""The named overwrite methods, and the content each pass writes.

A method is a list of passes; a pass writes either a fixed pattern (the same bytes at
every offset, so one buffer is filled once and written over and over) or a random stream.

The random stream is AES-256-CTR keystream (the ``cryptography`` library, i.e. OpenSSL)
under a key from ``os.urandom`` that lives only in memory. CTR mode makes the stream
seekable: the bytes at any offset are regenerated from (key, nonce + offset / 16) alone,
which is what lets parallel chunks, retries and sampled verification each regenerate just
the part they need. The key never touches the disk, so an interrupted random pass cannot
be resumed and is restarted instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from agent.errors import UsageError
from agent.i18n import T_, _, localize, pgettext
from agent.records import Category

# Every fixed pattern repeats with a period that divides the sector size, so the content
# of any sector-aligned range is the same bytes: one buffer serves every offset.
_MAX_PATTERN = 512


class PatternSource:
    """A fixed byte pattern repeated over the whole device."""

    constant = True

    def __init__(self, pattern: bytes, label: str | None = None) -> None:
        if not pattern or len(pattern) > _MAX_PATTERN or _MAX_PATTERN % len(pattern):
            raise UsageError(f"pattern length must be 1, 2, 4, ... or {_MAX_PATTERN} bytes, not {len(pattern)}")
        self.pattern = pattern
        self.label = label or "0x" + pattern.hex()

    def fill(self, buf, offset: int, length: int, at: int = 0) -> None:
        buf.fill(self.pattern)


_ZEROS = memoryview(b"")


def _zeros(length: int) -> memoryview:
    # One shared, never-written zero input for every stream: calloc'd pages that are never
    # touched cost no resident memory, which matters with 16 devices wiping at once.
    global _ZEROS
    if len(_ZEROS) < length:
        _ZEROS = memoryview(bytes(max(length, 16 << 20)))
    return _ZEROS[:length]


class RandomStream:
    """AES-256-CTR keystream; byte ``i`` of the device is keystream byte ``i``."""

    constant = False
    label = "random"
    # cryptography's update_into needs one cipher block of room past the data.
    slack = 16

    def __init__(self, key: bytes | None = None, nonce: bytes | None = None) -> None:
        self._key = key or os.urandom(32)
        self._nonce = int.from_bytes(nonce or os.urandom(16), "big")
        self._algorithm = algorithms.AES(self._key)

    def fill(self, buf, offset: int, length: int, at: int = 0) -> None:
        """Write the keystream for device bytes [offset, offset+length) into ``buf`` at ``at``."""
        if offset % 16:
            raise ValueError("random stream offsets are multiples of the AES block")
        counter = (self._nonce + offset // 16) % (1 << 128)
        encryptor = Cipher(self._algorithm, modes.CTR(counter.to_bytes(16, "big"))).encryptor()
        # Encrypting zeros yields the raw keystream; update_into writes straight into the
        # aligned buffer and releases the GIL, so generation overlaps the writer thread.
        encryptor.update_into(_zeros(length), buf.whole[at:])

    def bytes_at(self, offset: int, length: int) -> bytes:
        """The stream at an offset, as bytes (for tests and small reads)."""
        counter = (self._nonce + offset // 16) % (1 << 128)
        skip = offset % 16
        encryptor = Cipher(self._algorithm, modes.CTR(counter.to_bytes(16, "big"))).encryptor()
        return encryptor.update(bytes(skip + length))[skip:]


@dataclass(frozen=True)
class PassSpec:
    """One pass: a fixed pattern (``pattern`` bytes) or the random stream (None)."""

    pattern: bytes | None

    @property
    def random(self) -> bool:
        return self.pattern is None

    @property
    def label(self) -> str:
        if self.pattern is None:
            return "random"
        if self.pattern == b"\x00":
            return "zero"
        if self.pattern == b"\xff":
            return "ones"
        return "0x" + self.pattern.hex()

    def source(self) -> PatternSource | RandomStream:
        """A fresh content source; for random passes, a fresh in-memory key."""
        return RandomStream() if self.pattern is None else PatternSource(self.pattern, self.label)


@dataclass(frozen=True)
class OverwriteMethod:
    name: str
    passes: tuple[PassSpec, ...]
    description: str
    source: str
    status: str  # "current" | "obsolete": whether the standard is still in force
    category: Category = Category.CLEAR  # an overwrite is NIST Clear, never Purge
    # The method itself includes read-back of the final pass (HMG IS5 Enhanced).
    requires_verification: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def _complement(pattern: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in pattern)


ZERO = PassSpec(b"\x00")
ONES = PassSpec(b"\xff")
RANDOM = PassSpec(None)

METHODS: dict[str, OverwriteMethod] = {
    m.name: m
    for m in (
        OverwriteMethod(
            "zero",
            (ZERO,),
            T_("one pass of zeros"),
            T_("NIST SP 800-88 Rev. 1 (2014), Table A: Clear by overwrite, one pass"),
            "current",
        ),
        OverwriteMethod(
            "random",
            (RANDOM,),
            T_("one pass of AES-256-CTR keystream (key in memory only, regenerated for verification)"),
            T_("NIST SP 800-88 Rev. 1 (2014), Table A: Clear by overwrite with random data"),
            "current",
        ),
        OverwriteMethod(
            "two-pass",
            (PassSpec(b"\x55"), PassSpec(b"\xaa")),
            T_("pattern 0x55, then its complement 0xAA"),
            T_("Ardoise default for USB sticks, SD cards and eMMC (DESIGN policy); NIST SP 800-88 Clear"),
            "current",
        ),
        OverwriteMethod(
            "dod-3pass",
            (ZERO, ONES, RANDOM),
            T_("a character (0x00), its complement (0xFF), then random"),
            T_("US DoD 5220.22-M (1995) overwrite; dropped from the NISPOM in 2006, superseded by NIST SP 800-88"),
            "obsolete",
        ),
        OverwriteMethod(
            "hmg-is5-enhanced",
            (ZERO, ONES, RANDOM),
            T_("zeros, ones, random, then verification of the final pass"),
            T_("UK HMG Infosec Standard 5 (IS5), Enhanced; withdrawn by NCSC, whose secure sanitisation guidance replaces it"),
            "obsolete",
            requires_verification=True,
        ),
    )
}


def get_method(name: str) -> OverwriteMethod:
    """A named method, or ``pattern:<hex>`` (one pass of that repeated pattern)."""
    if name in METHODS:
        return METHODS[name]
    if name.startswith("pattern:"):
        text = name.split(":", 1)[1].removeprefix("0x")
        try:
            pattern = bytes.fromhex(text)
        except ValueError:
            raise UsageError(T_("pattern '{text}' is not hexadecimal (e.g. pattern:55 or pattern:deadbeef)",
                                text=text)) from None
        PatternSource(pattern)  # validates the length
        return OverwriteMethod(
            name,
            (PassSpec(pattern),),
            T_("one pass of the repeated pattern 0x{hex}", hex=pattern.hex()),
            T_("user-defined pattern; NIST SP 800-88 Clear by overwrite"),
            "current",
        )
    known = ", ".join([*METHODS, "pattern:<hex>"])
    raise UsageError(T_("unknown method '{name}' (known: {known})", name=name, known=known))


def describe_methods() -> str:
    """Plain-text table of the methods, for ``ardoise wipe --help``, in the agent's language."""
    status = {"current": pgettext("method status", "current"), "obsolete": pgettext("method status", "obsolete")}
    lines = [_("methods:")]
    for m in METHODS.values():
        lines.append(f"  {m.name:<17} {localize(m.description)} [{status.get(m.status, m.status)}]")
        lines.append(f"  {'':<17} " + _("source: {source}").format(source=localize(m.source)))
    lines.append(f"  {'pattern:<hex>':<17} " + _("one pass of a repeated pattern (1, 2, 4 ... 512 bytes)")
                 + f" [{status['current']}]")
    return "\n".join(lines)
