"""The boot files of a live ISO, extracted and checked against the image's manifest.

pycdlib reads the ISO 9660 tree in pure Python (no mount, no root, no xorriso process to
parse), and streams each file out in chunks: the 150 MB base layer never sits in memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ConfigError

# ISO path -> the name it is served under (the ISO's own layout, docs/image.md).
BOOT_FILES = ("live/vmlinuz", "live/initrd.img", "live/10-base.squashfs", "live/20-ardoise.squashfs")
_SHA_LINE = re.compile(r"^sha256: (\S+) ([0-9a-f]{64})$")
CHUNK = 1 << 20


@dataclass(frozen=True)
class BootFiles:
    root: Path  # directory holding live/...
    version: str
    sizes: dict[str, int]

    def path(self, name: str) -> Path:
        return self.root / name

    @property
    def layers(self) -> list[str]:
        return sorted(n for n in self.sizes if n.endswith(".squashfs"))


def manifest_path(iso: Path) -> Path:
    name = iso.name[:-4] if iso.name.endswith(".iso") else iso.name
    return iso.with_name(name + ".manifest.txt")


def read_manifest(path: Path) -> tuple[str, dict[str, str]]:
    """The agent version and the ``sha256: <path> <hex>`` lines of a manifest."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the image manifest {path}: {exc.strerror or exc} "
                          "(build_image.sh writes it beside the ISO)") from None
    version = "unknown"
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("agent_version: "):
            version = line.split(": ", 1)[1].strip()
        elif m := _SHA_LINE.match(line.strip()):
            sums[m.group(1)] = m.group(2)
    return version, sums


def pad_to_cpio_alignment(path: Path) -> None:
    """Zero bytes after the initramfs up to a multiple of 4. The kernel reads the initrds it
    is given as one stream and takes a plain cpio archive (netboot.cpio) only at a 4-byte
    boundary; iPXE's BIOS loader aligns each initrd, but the EFI stub may place them back to
    back, and an unaligned netboot.cpio is then "invalid magic at start of compressed
    archive". Zeros between archives are skipped, so the padding is harmless everywhere."""
    with open(path, "ab") as f:
        f.write(b"\0" * (-f.tell() % 4))


def extract(iso: Path, dest: Path) -> BootFiles:
    """Copy the boot files out of ``iso`` into ``dest`` and check each one's SHA-256
    against the manifest beside the ISO; raise ``ConfigError`` in one line otherwise."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    version, sums = read_manifest(manifest_path(iso))
    missing = [n for n in BOOT_FILES if n not in sums]
    if missing:
        raise ConfigError(f"the manifest {manifest_path(iso)} has no sha256 line for {', '.join(missing)}: "
                          "rebuild the image with this version of build_image.sh")
    cd = pycdlib.PyCdlib()
    try:
        cd.open(str(iso))
    except (OSError, PyCdlibException) as exc:
        raise ConfigError(f"{iso} is not a readable ISO 9660 image: {exc}") from None
    sizes: dict[str, int] = {}
    try:
        for name in BOOT_FILES:
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with cd.open_file_from_iso(rr_path="/" + name) as src, open(out, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
            except PyCdlibException as exc:
                raise ConfigError(f"{iso} has no /{name}: {exc}") from None
            if digest.hexdigest() != sums[name]:
                raise ConfigError(f"/{name} in {iso} does not match the manifest's sha256: "
                                  "the ISO or its manifest is damaged or from another build")
            if name == "live/initrd.img":
                pad_to_cpio_alignment(out)
            sizes[name] = out.stat().st_size
    finally:
        cd.close()
    return BootFiles(dest, version, sizes)
