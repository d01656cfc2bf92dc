"""Host side of the end-to-end test: the virtual stick, virtual disks with planted data,
and a QEMU machine booting the live image under TCG (SeaBIOS, OVMF, OVMF + Secure Boot)."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

OVMF_DIR = Path("/usr/share/OVMF")
# (code, vars template) per firmware; the vars file is copied because the VM writes to it.
FIRMWARE = {
    "bios": None,
    "uefi": ("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"),
    # Microsoft-keyed variables: shim is signed by Microsoft's UEFI CA, as on real laptops.
    "secureboot": ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"),
}
SECTOR = 512


# --------------------------------------------------------------------------- the stick


@dataclass(frozen=True)
class Partition:
    index: int  # 1-based, as in the MBR
    type: int
    start: int  # bytes
    size: int  # bytes

    @property
    def end(self) -> int:
        return self.start + self.size


def mbr_partitions(image: Path) -> list[Partition]:
    """The primary partitions of an MBR-partitioned image (the hybrid ISO has one)."""
    with open(image, "rb") as f:
        mbr = f.read(SECTOR)
    assert mbr[510:512] == b"\x55\xaa", f"{image}: no MBR signature"
    parts = []
    for i in range(4):
        entry = mbr[446 + 16 * i : 446 + 16 * (i + 1)]
        ptype = entry[4]
        lba, count = struct.unpack("<II", entry[8:16])
        if ptype and count:
            parts.append(Partition(i + 1, ptype, lba * SECTOR, count * SECTOR))
    return parts


def data_partition(image: Path) -> Partition:
    """The FAT data partition (type 0x0c, appended last) of an Ardoise image."""
    fats = [p for p in mbr_partitions(image) if p.type == 0x0C]
    assert len(fats) == 1, f"{image}: expected one FAT32-LBA data partition, found {fats}"
    return fats[0]


def mtools_target(image: Path, part: Partition) -> str:
    return f"{image}@@{part.start}"


def mcopy_in(image: Path, part: Partition, src: Path, dest: str) -> None:
    subprocess.run(["mcopy", "-o", "-i", mtools_target(image, part), str(src), f"::{dest}"],
                   check=True, capture_output=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})


def mcopy_out(image: Path, part: Partition, src: str, dest: Path) -> bool:
    """Copy a file or directory out of the data partition; False when it does not exist."""
    r = subprocess.run(["mcopy", "-s", "-n", "-i", mtools_target(image, part), f"::{src}", str(dest)],
                       capture_output=True, text=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return r.returncode == 0


def mdir(image: Path, part: Partition, path: str = "/") -> str:
    r = subprocess.run(["mdir", "-/", "-b", "-i", mtools_target(image, part), f"::{path}"],
                       capture_output=True, text=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return r.stdout


def digest_outside(image: Path, part: Partition) -> str:
    """SHA-256 of every byte of the image except the data partition: the part the live
    system must never write."""
    h = hashlib.sha256()
    size = image.stat().st_size
    with open(image, "rb") as f:
        for start, end in ((0, part.start), (part.end, size)):
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()


def make_stick(iso: Path, dest: Path, config_text: str | None) -> Path:
    """The ISO as a USB stick image, with ``ardoise.yaml`` written into its data partition."""
    shutil.copyfile(iso, dest)
    if config_text is not None:
        cfg = dest.with_suffix(".yaml")
        cfg.write_text(config_text)
        mcopy_in(dest, data_partition(dest), cfg, "/ardoise.yaml")
    return dest


# --------------------------------------------------------------------------- virtual disks


@dataclass
class VirtualDisk:
    """A raw disk image holding an ext4 file system with files, plus raw markers outside it.

    ``marker`` is a random string planted in files and in raw sectors: if any copy of it
    survives anywhere in the image after the run, the disk was not wiped."""

    path: Path
    kind: str  # "nvme" | "sata" | "usb"
    serial: str
    size: int
    marker: bytes = field(default_factory=lambda: b"ARDOISE-E2E-" + secrets.token_hex(8).encode())

    def create(self, workdir: Path) -> None:
        tree = workdir / f"{self.serial}-tree"
        (tree / "home" / "alice").mkdir(parents=True)
        for i in range(8):
            # Files big enough to spread over many blocks, each carrying the marker.
            body = (self.marker + b" confidential donor data %d\n" % i) * 2000
            (tree / "home" / "alice" / f"doc{i}.txt").write_bytes(body)
        (tree / "passwords.txt").write_bytes(self.marker + b" hunter2\n")
        fs_size = self.size - (4 << 20)  # the last 4 MiB stay outside the file system
        with open(self.path, "wb") as f:
            f.truncate(self.size)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", f"DATA-{self.serial}", "-d", str(tree),
                        str(self.path), f"{fs_size // 1024}k"], check=True, capture_output=True)
        shutil.rmtree(tree)
        with open(self.path, "r+b") as f:
            # Raw markers: in the tail outside the fs, and in the very last sector.
            for off in (fs_size + 4096, self.size - SECTOR):
                f.seek(off)
                f.write(self.marker)
        assert self.marker_count() >= 10, "planting the markers failed"

    def marker_count(self) -> int:
        """Occurrences of the marker in the whole image, read on the host."""
        count, tail = 0, b""
        with open(self.path, "rb") as f:
            while chunk := f.read(4 << 20):
                buf = tail + chunk
                count += buf.count(self.marker)
                # Keep an overlap so a marker across two chunks is seen, but not counted twice.
                tail = buf[-(len(self.marker) - 1):]
                count -= tail.count(self.marker)
        return count

    def nonzero_bytes(self, limit: int = 1 << 20) -> int:
        n = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(4 << 20):
                n += len(chunk) - chunk.count(0)
                if n >= limit:
                    break
        return n

    def qemu_args(self, index: int) -> list[str]:
        drive = f"d{index}"
        args = ["-drive", f"if=none,id={drive},format=raw,file={self.path},cache=unsafe"]
        if self.kind == "nvme":
            args += ["-device", f"nvme,serial={self.serial},drive={drive}"]
        elif self.kind == "sata":
            args += ["-device", f"ide-hd,bus=ahci0.{index % 6},drive={drive},serial={self.serial}"]
        elif self.kind == "usb":
            args += ["-device", f"usb-storage,bus=xhci.0,drive={drive},serial={self.serial}"]
        else:
            raise ValueError(self.kind)
        return args


# --------------------------------------------------------------------------- the machine


@dataclass
class BootResult:
    returncode: int | None  # None: killed after the timeout
    seconds: float
    serial: str
    ready_after: float | None  # seconds from QEMU start to "agent ready" on the serial line

    @property
    def powered_off(self) -> bool:
        return self.returncode == 0


class Machine:
    """One QEMU run: q35 under TCG, the stick on xHCI, disks on NVMe/AHCI/USB."""

    def __init__(self, workdir: Path, *, firmware: str = "bios", memory_mb: int = 1536,
                 network: bool = True, smp: int = 2):
        assert firmware in FIRMWARE, firmware
        self.workdir = workdir
        self.firmware = firmware
        self.memory_mb = memory_mb
        self.network = network
        self.smp = smp
        self.serial_log = workdir / f"serial-{firmware}.log"

    def argv(self, stick: Path, disks: list[VirtualDisk]) -> list[str]:
        machine = "q35,smm=on" if self.firmware == "secureboot" else "q35"
        # QEMU's default CPU model: under TCG, "-cpu max" emulates AVX and friends that the
        # kernel and libraries then use, and the boot to agent-ready takes 130 s instead of 74.
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", machine,
                "-smp", str(self.smp), "-m", str(self.memory_mb),
                "-display", "none", "-vga", "std", "-monitor", "none", "-no-reboot",
                "-serial", f"file:{self.serial_log}"]
        fw = FIRMWARE[self.firmware]
        if fw is not None:
            code, vars_template = fw
            vars_copy = self.workdir / f"vars-{self.firmware}.fd"
            shutil.copyfile(OVMF_DIR / vars_template, vars_copy)
            if self.firmware == "secureboot":
                argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
            argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_DIR / code}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        argv += ["-device", "qemu-xhci,id=xhci", "-device", "ahci,id=ahci0",
                 "-drive", f"if=none,id=stick,format=raw,file={stick},cache=unsafe",
                 "-device", "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=0"]
        for i, disk in enumerate(disks):
            argv += disk.qemu_args(i)
        if self.network:
            # User-mode network: the guest reaches the host's 127.0.0.1 as 10.0.2.2.
            argv += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
        else:
            argv += ["-nic", "none"]
        return argv

    def boot(self, stick: Path, disks: list[VirtualDisk], *, timeout: float) -> BootResult:
        self.serial_log.write_text("")
        argv = self.argv(stick, disks)
        (self.workdir / f"qemu-{self.firmware}.argv").write_text(" ".join(argv) + "\n")
        start = time.monotonic()
        ready_after = None
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        returncode = None
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if ready_after is None and "ardoise-image: agent ready" in self._serial():
                    ready_after = time.monotonic() - start
                if time.monotonic() - start > timeout:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        if out.strip():
            (self.workdir / f"qemu-{self.firmware}.out").write_text(out)
        serial = self._serial()
        if ready_after is None and "ardoise-image: agent ready" in serial:
            ready_after = time.monotonic() - start
        return BootResult(returncode, time.monotonic() - start, serial, ready_after)

    def _serial(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
