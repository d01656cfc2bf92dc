"""Host side of the end-to-end test: the virtual stick, virtual disks with planted data,
and a QEMU machine booting the live image under TCG (SeaBIOS, OVMF, OVMF + Secure Boot)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
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
    # 32-bit UEFI (Bay Trail): Debian's ia32 OVMF exists only as an SMM build; its empty
    # variable store leaves Secure Boot off, as it must be for the unsigned BOOTIA32.EFI.
    "uefi32": ("OVMF32_CODE_4M.secboot.fd", "OVMF32_VARS_4M.fd"),
    # Laptops that moved to Microsoft's 2023 keys: only the 2023 UEFI CAs in db.
    "secureboot-2023": ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.fd"),
    # The 2011 store with the 2011 third-party UEFI CA revoked in dbx.
    "secureboot-dbx2011": ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"),
    # The store a laptop ends with after both of Microsoft's updates: the 2011 and 2023
    # CAs in db, then the 2011 UEFI CA revoked in dbx.
    "secureboot-both-dbx2011": ("OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.fd"),
}
# Firmware whose code is an SMM build: q35 needs smm=on and a secure flash.
SMM_FIRMWARE = {"secureboot", "uefi32", "secureboot-2023", "secureboot-dbx2011",
                "secureboot-both-dbx2011"}
MICROSOFT_OWNER = "77fa9abd-0359-4d32-bd60-28f4e78f784b"


def _microsoft_cert(name: str) -> Path:
    """A Microsoft certificate as shipped by the virt-firmware package (no download)."""
    import virt.firmware  # noqa: PLC0415  (a test dependency only)

    return Path(virt.firmware.__file__).parent / "certs" / "microsoft.com" / name


def secure_boot_store(firmware: str, template: Path, out: Path) -> None:
    """Write the variable store of a Secure Boot test with virt-fw-vars."""
    tool = [sys.executable, "-m", "virt.firmware.vars", "-i", str(template), "-o", str(out)]
    if firmware == "secureboot-2023":
        tool += ["--enroll-generate", "Ardoise test platform", "--microsoft-kek", "2023",
                 "--microsoft-db", "uefi23",
                 "--add-db", MICROSOFT_OWNER, str(_microsoft_cert("windows-2023.pem")), "--sb"]
    elif firmware == "secureboot-dbx2011":
        tool += ["--add-dbx-cert", MICROSOFT_OWNER, str(_microsoft_cert("ms-uefi-2011.pem"))]
    elif firmware == "secureboot-both-dbx2011":
        tool += ["--enroll-generate", "Ardoise test platform", "--microsoft-kek", "all",
                 "--microsoft-db", "all",
                 "--add-dbx-cert", MICROSOFT_OWNER, str(_microsoft_cert("ms-uefi-2011.pem")), "--sb"]
    else:
        raise ValueError(firmware)
    subprocess.run(tool, check=True, capture_output=True)
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
    kind: str  # "nvme" | "sata" | "usb" | "megasas" (a RAID volume) | "sd" (size a power of 2)
    serial: str
    size: int
    marker: bytes = field(default_factory=lambda: b"ARDOISE-E2E-" + secrets.token_hex(8).encode())
    # QEMU's I/O throttle (bytes/s, reads and writes together): a wipe that lasts long
    # enough under TCG for the test to pull the drive in the middle of it.
    throttle_bps: int | None = None
    # (first LBA, count) of 512-byte sectors that fail every read and write with EIO, by
    # QEMU's blkdebug driver under the emulated controller: the guest kernel sees a real
    # media error from its AHCI/NVMe driver, as with a drive's bad sectors.
    bad_sectors: tuple[int, int] | None = None

    @property
    def device_id(self) -> str:
        return f"dev-{self.serial}"

    @property
    def drive_id(self) -> str:
        return f"drv-{self.serial}"

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
        return len(self.marker_offsets())

    def marker_offsets(self) -> list[int]:
        """Byte offsets of every copy of the marker in the image, read on the host."""
        found: list[int] = []
        base, tail = 0, b""  # ``tail``: the previous chunk's end, for a marker across chunks
        with open(self.path, "rb") as f:
            while chunk := f.read(4 << 20):
                buf = tail + chunk
                start = base - len(tail)
                i = buf.find(self.marker)
                while i != -1:
                    if start + i not in found[-1:]:
                        found.append(start + i)
                    i = buf.find(self.marker, i + 1)
                base += len(chunk)
                tail = buf[-(len(self.marker) - 1):]
        return found

    def plant(self, offset: int) -> None:
        """One more raw copy of the marker at ``offset``."""
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(self.marker)

    def nonzero_bytes(self, limit: int = 1 << 20) -> int:
        n = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(4 << 20):
                n += len(chunk) - chunk.count(0)
                if n >= limit:
                    break
        return n

    def blkdebug_json(self) -> str:
        """The disk as a -blockdev: raw over blkdebug over the image file."""
        first, count = self.bad_sectors
        rules = [{"event": event, "sector": lba, "errno": errno.EIO, "once": False}
                 for lba in range(first, first + count) for event in ("read_aio", "write_aio")]
        return json.dumps({
            "driver": "raw", "node-name": self.drive_id,
            "file": {"driver": "blkdebug", "inject-error": rules,
                     "image": {"driver": "file", "filename": str(self.path), "cache": {"no-flush": True}}},
        })

    def drive_spec(self, drive_id: str | None = None) -> str:
        """-drive options (also HMP ``drive_add``'s, for hot-plug)."""
        spec = f"if=none,id={drive_id or self.drive_id},format=raw,file={self.path},cache=unsafe"
        if self.throttle_bps:
            spec += f",throttling.bps-total={self.throttle_bps}"
        return spec

    def device_spec(self, index: int = 0, *, bus: str | None = None, drive_id: str | None = None) -> str:
        """-device options; ``bus`` is the PCIe root port of a hot-plugged NVMe disk."""
        common = f"drive={drive_id or self.drive_id},serial={self.serial},id={self.device_id}"
        if self.kind == "nvme":
            return f"nvme,{common}" + (f",bus={bus}" if bus else "")
        if self.kind == "sata":
            return f"ide-hd,bus=ahci0.{index % 6},{common}"
        if self.kind == "usb":
            return f"usb-storage,bus=xhci.0,{common}"
        raise ValueError(self.kind)

    def qemu_args(self, index: int) -> list[str]:
        if self.bad_sectors:
            assert not self.throttle_bps, "blkdebug disks are not throttled"
            drive = ["-blockdev", self.blkdebug_json()]
        else:
            drive = ["-drive", self.drive_spec()]
        if self.kind == "megasas":
            # Its own LSI MegaRAID SAS 1078; QEMU's default (use_jbod=off) presents the disk
            # to the guest only as a logical drive: the agent sees a RAID volume.
            raid = f"raid{index}"
            return drive + ["-device", f"megasas,id={raid}",
                            "-device", f"scsi-hd,bus={raid}.0,drive={self.drive_id},serial={self.serial},id={self.device_id}"]
        if self.kind == "sd":
            # An SD card in its own SD host controller; sd-card has no serial property (the
            # guest reads QEMU's fixed CID), and QEMU wants a power-of-2 size.
            assert self.size & (self.size - 1) == 0, "QEMU SD cards are a power of 2 in size"
            host = f"sdhci{index}"
            return drive + ["-device", f"sdhci-pci,id={host}",
                            "-device", f"sd-card,drive={self.drive_id},id={self.device_id}"]
        return drive + ["-device", self.device_spec(index)]


# --------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Tap:
    """The machine's NIC on a tap device in network namespace ``netns``."""

    netns: str
    name: str
    mac: str
    nic_rom: bool = True  # False: the firmware's own PXE (OVMF), not QEMU's iPXE ROM


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
    """One QEMU run: q35 under TCG, the stick on xHCI, disks on NVMe/AHCI/USB.

    With ``qmp=True`` the test drives QEMU's monitor while the guest runs: hot-plug a disk
    (USB on the xHCI controller, NVMe on a free PCIe root port), pull one, quit."""

    def __init__(self, workdir: Path, *, firmware: str = "bios", memory_mb: int = 1536,
                 network: bool = True, smp: int = 2, qmp: bool = False, root_ports: int = 0,
                 bootfile: str | None = None, tap: "Tap | None" = None):
        assert firmware in FIRMWARE, firmware
        self.bootfile = bootfile  # network boot: QEMU's DHCP hands this URL to the NIC's iPXE
        self.tap = tap  # network boot from a switch: a tap on a bridge in a network namespace
        self.workdir = workdir
        self.firmware = firmware
        self.memory_mb = memory_mb
        self.network = network
        self.smp = smp
        self.qmp_path = workdir / "qmp.sock" if qmp else None
        self.root_ports = root_ports
        self.serial_log = workdir / f"serial-{firmware}.log"

    def argv(self, stick: Path | None, disks: list[VirtualDisk]) -> list[str]:
        machine = "q35,smm=on" if self.firmware in SMM_FIRMWARE else "q35"
        # QEMU's default CPU model: under TCG, "-cpu max" emulates AVX and friends that the
        # kernel and libraries then use, and the boot to agent-ready takes 130 s instead of 74.
        argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", machine,
                "-smp", str(self.smp), "-m", str(self.memory_mb),
                "-display", "none", "-vga", "std", "-monitor", "none", "-no-reboot",
                "-serial", f"file:{self.serial_log}"]
        if self.qmp_path is not None:
            argv += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        fw = FIRMWARE[self.firmware]
        if fw is not None:
            code, vars_template = fw
            vars_copy = self.workdir / f"vars-{self.firmware}.fd"
            if self.firmware.startswith("secureboot-"):
                secure_boot_store(self.firmware, OVMF_DIR / vars_template, vars_copy)
            else:
                shutil.copyfile(OVMF_DIR / vars_template, vars_copy)
            if self.firmware in SMM_FIRMWARE:
                argv += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
            argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_DIR / code}",
                     "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"]
        argv += ["-device", "qemu-xhci,id=xhci", "-device", "ahci,id=ahci0"]
        if stick is not None:
            argv += ["-drive", f"if=none,id=stick,format=raw,file={stick},cache=unsafe",
                     "-device", "usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=0"]
        for i in range(self.root_ports):
            # Empty hot-plug slots, as in a shelf's NVMe bays.
            argv += ["-device", f"pcie-root-port,id=rp{i},chassis={i + 1},slot={i + 1}"]
        for i, disk in enumerate(disks):
            argv += disk.qemu_args(i)
        if self.tap is not None:
            nic = f"virtio-net-pci,netdev=n0,mac={self.tap.mac},bootindex=0"
            if not self.tap.nic_rom:
                # No option ROM: OVMF's own network stack does PXE, as a laptop's firmware
                # does (QEMU's ROM is iPXE, which would skip the loaders under test).
                nic += ",romfile="
            argv += ["-netdev", f"tap,id=n0,ifname={self.tap.name},script=no,downscript=no", "-device", nic]
        elif self.bootfile:
            argv += ["-netdev", f"user,id=n0,bootfile={self.bootfile}",
                     "-device", "virtio-net-pci,netdev=n0,bootindex=0"]
        elif self.network:
            # User-mode network: the guest reaches the host's 127.0.0.1 as 10.0.2.2.
            argv += ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]
        else:
            argv += ["-nic", "none"]
        return argv

    def start(self, stick: Path | None, disks: list[VirtualDisk]) -> "Running":
        self.serial_log.write_text("")
        argv = self.argv(stick, disks)
        if self.tap is not None:
            argv = ["ip", "netns", "exec", self.tap.netns, *argv]  # the tap lives there
        (self.workdir / f"qemu-{self.firmware}.argv").write_text(" ".join(argv) + "\n")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        return Running(self, proc, time.monotonic())

    def boot(self, stick: Path, disks: list[VirtualDisk], *, timeout: float) -> BootResult:
        """Boot and wait until the machine powers itself off (or the timeout)."""
        return self.start(stick, disks).wait(timeout)

    def _serial(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


READY = "ardoise-image: agent ready"


class GuestTimeout(AssertionError):
    pass


class Running:
    """A QEMU process under way: its serial console, its monitor, its end."""

    def __init__(self, machine: Machine, proc: subprocess.Popen, started: float):
        self.machine = machine
        self.proc = proc
        self.started = started
        self.ready_after: float | None = None
        self._qmp = None
        self._next_slot = 0
        self._plugs = 0
        self.result: BootResult | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def serial(self) -> str:
        text = self.machine._serial()
        if self.ready_after is None and READY in text:
            self.ready_after = self.elapsed()
        return text

    def wait_for(self, pattern: str, timeout: float, *, after: int = 0) -> re.Match:
        """The first match of the regex ``pattern`` in the serial log (from offset ``after``)."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.compile(pattern, re.M).search(self.serial(), after)
            if m:
                return m
            if self.proc.poll() is not None:
                raise GuestTimeout(f"QEMU exited ({self.proc.returncode}) before {pattern!r}:\n"
                                   f"{self.serial()[-3000:]}")
            if time.monotonic() > deadline:
                raise GuestTimeout(f"no {pattern!r} on the serial console within {timeout:.0f} s:\n"
                                   f"{self.serial()[-3000:]}")
            time.sleep(0.5)

    # ---------------------------------------------------------------- monitor

    def qmp(self, command: str, **args):
        if self._qmp is None:
            from qemu.qmp.legacy import QEMUMonitorProtocol

            assert self.machine.qmp_path is not None, "Machine(qmp=True) for a monitor"
            self._qmp = QEMUMonitorProtocol(str(self.machine.qmp_path))
            self._qmp.connect()
        return self._qmp.cmd(command, **args)

    def plug(self, disk: VirtualDisk) -> None:
        """Hot-add ``disk``: USB on the xHCI controller, NVMe on the next free root port."""
        self._plugs += 1
        drive_id = f"{disk.drive_id}-{self._plugs}"  # a re-inserted disk gets a fresh drive
        out = self.qmp("human-monitor-command", **{"command-line": f"drive_add 0 {disk.drive_spec(drive_id)}"})
        assert "OK" in out, f"drive_add {disk.serial}: {out!r}"
        bus = None
        if disk.kind == "nvme":
            assert self._next_slot < self.machine.root_ports, "no free PCIe root port"
            bus = f"rp{self._next_slot}"
            self._next_slot += 1
        spec = disk.device_spec(bus=bus, drive_id=drive_id)
        out = self.qmp("human-monitor-command", **{"command-line": f"device_add {spec}"})
        assert not out.strip(), f"device_add {disk.serial}: {out!r}"

    def unplug(self, disk: VirtualDisk, *, wait: float = 0) -> None:
        """Pull ``disk`` out, as a technician pulls a drive from its bay; with ``wait``,
        until QEMU says the device is gone (the guest let go of a PCIe device)."""
        self.qmp("device_del", id=disk.device_id)
        deadline = time.monotonic() + wait
        while wait:
            left = deadline - time.monotonic()
            assert left > 0, f"{disk.device_id} still present {wait:.0f} s after device_del"
            try:
                event = self._qmp.pull_event(wait=float(left))
            except asyncio.TimeoutError:
                continue
            if event and event.get("event") == "DEVICE_DELETED" and \
                    event.get("data", {}).get("device") == disk.device_id:
                return

    # ---------------------------------------------------------------- the end

    def wait(self, timeout: float) -> BootResult:
        """Until QEMU exits by itself (the guest powered off) or ``timeout`` from the start."""
        returncode = None
        try:
            while True:
                try:
                    returncode = self.proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
                self.serial()
                if self.elapsed() > timeout:
                    break
        finally:
            self._end(returncode)
        return self.result

    def quit(self) -> BootResult:
        """Stop the machine now (a shelf session never ends by itself)."""
        returncode = None
        try:
            if self.proc.poll() is None:
                self.qmp("quit")
            returncode = self.proc.wait(timeout=30)
        finally:
            self._end(returncode)
        return self.result

    def finish(self) -> BootResult:
        """The run's result; kills QEMU first if it is still running (a test that failed
        half-way), so that its diagnostics can be kept all the same."""
        if self.result is None:
            self._end(None)
        return self.result

    def _end(self, returncode: int | None) -> None:
        if self.result is None:
            self._stop()
            self.result = self._result(returncode)

    def _stop(self) -> None:
        if self._qmp is not None:
            try:
                self._qmp.close()
            except Exception:  # noqa: BLE001 - QEMU is gone already
                pass
            self._qmp = None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _result(self, returncode: int | None) -> BootResult:
        out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
        if out.strip():
            (self.machine.workdir / f"qemu-{self.machine.firmware}.out").write_text(out)
        serial = self.serial()
        return BootResult(returncode, self.elapsed(), serial, self.ready_after)
