"""Self-encrypting drives (TCG Opal, Opal 2, Pyrite, Ruby, Enterprise): what a drive is,
whether a locking range is locked, and what the agent may do about it.

Why: an overwrite of a locked range fails on every block (or, worse, a drive answers with
ciphertext), so a locked SED is FAILED "locked self-encrypting drive" unless the
workshop holds its PSID (printed on the label), in which case a PSID revert - a
cryptographic erase done by the drive - is the way to sanitize it.

Sources of truth, all through the command gateway:
- ``sedutil-cli --query DEV`` (Level 0 Discovery, decoded): the SSC and the Locking
  feature (LockingSupported, LockingEnabled, Locked). sedutil is not packaged in Debian
  12: it is used only where the image has it.
- ``sedutil-cli --scan``: one SSC letter per drive (1 Opal 1, 2 Opal 2, E Enterprise,
  p Pyrite 1, P Pyrite 2, R Ruby, L Opalite), "No" for a drive that is not a SED.
- ``nvme id-ctrl``: OACS bit 0 says the controller supports Security Send/Receive, the
  transport TCG needs; then ``nvme security-recv`` (nvme-cli, on the image) lists its
  security protocols and, when TCG is one, returns its Level 0 Discovery: the SSC and the
  Locking feature, what sedutil --query decodes, without sedutil.
- ``hdparm --Istdout`` (SATA): IDENTIFY word 48 bit 0, "Trusted Computing feature set
  supported". It says the drive speaks TCG, not which SSC (Opal, Pyrite, Ruby) nor whether
  a range is locked: without sedutil such a drive is "self-encrypting drive (TCG), locking
  state unknown". ``hdparm -I`` does not print word 48 (hdparm 9.65 identify.c has no
  string for it), hence the raw words.

The parsers and ``decide`` are pure and tested on recorded outputs (tests/fixtures/sed/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.i18n import T_

# sedutil-cli --scan letters (DtaDevOpal / ChubbyAnt fork) -> SSC name.
SCAN_LETTERS = {"1": "Opal 1", "2": "Opal 2", "E": "Enterprise", "p": "Pyrite 1", "P": "Pyrite 2",
                "R": "Ruby", "L": "Opalite"}  # fmt: skip

# Level 0 Discovery feature headers as sedutil --query prints them -> SSC name.
_QUERY_SSC = [
    (re.compile(r"^OPAL (2\.\d+) function", re.M), "Opal {0}"),
    (re.compile(r"^OPAL 1\.0 function", re.M), "Opal 1"),
    (re.compile(r"^Enterprise function", re.M), "Enterprise"),
    (re.compile(r"^Pyrite (?:SSC )?(\d)(?:\.\d+)? function", re.M | re.I), "Pyrite {0}"),
    (re.compile(r"^Ruby (?:SSC )?function", re.M | re.I), "Ruby"),
    (re.compile(r"^Opalite function", re.M | re.I), "Opalite"),
]
_FLAG = re.compile(r"\b(Locked|LockingEnabled|LockingSupported|MediaEncrypt)\s*=\s*([YN])\b")

LOCKED_FAILURE = "locked self-encrypting drive"


@dataclass
class SedInfo:
    """What is known of a drive's TCG storage; None fields were not read."""

    ssc: list[str] = field(default_factory=list)  # ["Opal 2.15"], ["Pyrite 2"]; [] not a SED
    locking_supported: bool | None = None
    locking_enabled: bool | None = None
    locked: bool | None = None  # a locking range is locked now
    media_encrypt: bool | None = None
    source: str = ""  # which command said so
    # The drive says it speaks TCG (ATA IDENTIFY word 48) but nothing told which SSC.
    tcg_feature: bool = False

    @property
    def is_sed(self) -> bool:
        return bool(self.ssc) or self.tcg_feature

    @property
    def kind(self) -> str:
        return ", ".join(self.ssc) or "TCG"


def parse_query(text: str) -> SedInfo | None:
    """``sedutil-cli --query DEV`` -> SedInfo; None when the output has no TCG features."""
    ssc = []
    for pattern, name in _QUERY_SSC:
        m = pattern.search(text)
        if m:
            ssc.append(name.format(*m.groups()))
    flags = {k: v == "Y" for k, v in _FLAG.findall(text)}
    if not ssc and not flags:
        return None
    # Pyrite drives have the Locking feature without media encryption: no crypto erase.
    return SedInfo(
        ssc=ssc,
        locking_supported=flags.get("LockingSupported", True if "Locked" in flags else None),
        locking_enabled=flags.get("LockingEnabled"),
        locked=flags.get("Locked"),
        media_encrypt=flags.get("MediaEncrypt"),
        source="sedutil-cli --query",
    )


def parse_scan(text: str) -> dict[str, list[str]]:
    """``sedutil-cli --scan`` -> {device: [SSC names]} ([] for "No")."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^(/dev/\S+)\s+(.*)$", line)
        if not m:
            continue
        rest = m[2]
        if rest.strip().startswith("No"):
            out[m[1]] = []
            continue
        # The SSC letters sit in a fixed-width column before the model: single-letter tokens.
        letters = []
        for token in rest.split():
            if len(token) == 1 and token in SCAN_LETTERS:
                letters.append(SCAN_LETTERS[token])
            elif re.fullmatch(r"[12E]{2,3}", token):
                letters.extend(SCAN_LETTERS[c] for c in token)
            else:
                break
        out[m[1]] = letters
    return out


# TCG Storage Architecture Core Spec, Level 0 Discovery: feature codes of the SSCs.
LEVEL0_SSC = {0x0100: "Enterprise", 0x0200: "Opal 1", 0x0203: "Opal 2", 0x0301: "Opalite", 0x0302: "Pyrite 1",
              0x0303: "Pyrite 2", 0x0304: "Ruby", 0x0305: "Key Per I/O"}
LEVEL0_LOCKING = 0x0002
TCG_PROTOCOL = 0x01  # security protocol 01h: TCG (SPC-4 "security protocol information" lists it)
_HEXDUMP_LINE = re.compile(r"^([0-9a-fA-F]{4}):((?:\s[0-9a-fA-F]{2})+)")


def parse_nvme_hexdump(text: str) -> bytes:
    """The buffer nvme-cli prints after a Security Receive (``0000: 00 01 ... "...."``)."""
    out = bytearray()
    for line in text.splitlines():
        m = _HEXDUMP_LINE.match(line.strip())
        if m and int(m.group(1), 16) == len(out):
            out.extend(bytes.fromhex(m.group(2)))
    return bytes(out)


def security_protocols(data: bytes) -> list[int]:
    """Security protocol 00h, specific 0000h: the supported protocols (SPC-4 7.7.1):
    a 2-byte list length at offset 6, then one byte per protocol."""
    if len(data) < 8:
        return []
    count = int.from_bytes(data[6:8], "big")
    return list(data[8:8 + count])


def parse_level0(data: bytes) -> SedInfo | None:
    """Level 0 Discovery (security protocol 01h, specific 0001h): a 48-byte header whose
    first 4 bytes are the length of what follows them, then features (code 2 bytes,
    version 1, length 1, data). None when no SSC feature is in it."""
    if len(data) < 48:
        return None
    end = min(len(data), 4 + int.from_bytes(data[0:4], "big"))
    ssc: list[str] = []
    info = SedInfo(source="nvme security-recv (Level 0 Discovery)")
    pos = 48
    while pos + 4 <= end:
        code, length = int.from_bytes(data[pos:pos + 2], "big"), data[pos + 3]
        body = data[pos + 4:pos + 4 + length]
        if len(body) < length:
            break  # a feature cut short by the buffer: the ones before it are whole
        if code in LEVEL0_SSC:
            ssc.append(LEVEL0_SSC[code])
        elif code == LEVEL0_LOCKING and body:
            flags = body[0]
            info.locking_supported = bool(flags & 0x01)
            info.locking_enabled = bool(flags & 0x02)
            info.locked = bool(flags & 0x04)
            info.media_encrypt = bool(flags & 0x08)
        pos += 4 + length
    if not ssc:
        return None
    info.ssc = ssc
    return info


def nvme_security_supported(oacs: int) -> bool:
    """OACS bit 0: Security Send/Receive, the transport of every TCG SSC on NVMe."""
    return bool(oacs & 0x1)


def _ata_major_version(words: list[int]) -> int:
    w = words[80]
    if w in (0x0000, 0xFFFF):
        return 0
    return max((b for b in range(1, 15) if w & (1 << b)), default=0)


def ata_trusted_computing(words: list[int]) -> bool:
    """IDENTIFY DEVICE word 48 (ACS-2 and later): bits 15:14 = 01b when the word is valid,
    bit 0 = Trusted Computing feature set supported (TRUSTED SEND/RECEIVE, the transport of
    every TCG SSC on SATA). Like the kernel's ``ata_id_has_trusted``, the word is ignored on
    drives older than ACS-2 (major version 8), where it was not yet defined."""
    if _ata_major_version(words) <= 7:
        return False
    w = words[48]
    return (w & 0xC000) == 0x4000 and bool(w & 0x1)


def from_ata_identify(words: list[int]) -> SedInfo | None:
    """A SATA drive's TCG support from its IDENTIFY words; None when it has none."""
    if not ata_trusted_computing(words):
        return None
    return SedInfo(tcg_feature=True, source="hdparm --Istdout (IDENTIFY word 48)")


@dataclass
class SedDecision:
    action: str  # "sanitize" (as usual), "fail", "psid-revert"
    reason: str
    psid: str | None = None


def _norm(serial: str | None) -> str:
    return "".join((serial or "").split()).upper()


def decide(info: SedInfo | None, serial: str | None, psids: dict[str, str] | None = None, *,
           can_revert: bool = True) -> SedDecision:
    """What to do with a drive given its SED state and the workshop's PSIDs (by serial).

    - not a SED, or locking state unknown, or no range locked: sanitize as usual (the
      certificate records the SSC when there is one, "TCG" when only IDENTIFY said so; a
      range that turns out locked makes the writes or the read-back fail, so FAILED);
    - a locked range and the drive's PSID in the config: PSID revert (crypto erase by the
      drive, then read-back verification; Purge only if the verification passes);
    - a locked range and no PSID: FAILED "locked self-encrypting drive";
    - a locked range, its PSID, and no sedutil-cli to send the revert: FAILED, saying so."""
    if info is None or not info.is_sed:
        return SedDecision("sanitize", T_("not a self-encrypting drive (or its TCG features could not be read)"))
    kind = info.kind
    if info.locked is None:
        return SedDecision("sanitize", T_("self-encrypting drive ({kind}), locking state unknown: sanitized as usual",
                                          kind=kind))
    if not info.locked:
        return SedDecision("sanitize", T_("self-encrypting drive ({kind}), no locked range: sanitized as usual",
                                          kind=kind))
    wanted = _norm(serial)
    for key, psid in (psids or {}).items():
        if wanted and _norm(key) == wanted:
            if not can_revert:
                return SedDecision("fail", T_("locked self-encrypting drive ({kind}): its PSID is in the config but a "
                                              "PSID revert needs sedutil-cli, which this image does not have",
                                              kind=kind))
            return SedDecision("psid-revert", T_("locked self-encrypting drive ({kind}): PSID revert with the PSID "
                                                 "from the config", kind=kind), psid)
    # The config key is spelled out with doubled braces: the sentence is a format template.
    return SedDecision(
        "fail",
        T_("locked self-encrypting drive ({kind}): a locking range is locked and no PSID for serial {serial} is in "
           "the config (psid: {{SERIAL: PSID}}, from the drive's label)", kind=kind, serial=serial or "?"),
    )
