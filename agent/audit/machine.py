"""What the machine is: DMI identity, CPU, memory, batteries, GPUs, network interfaces and
displays. Each reader returns its part or None with a one-line reason; nothing raises,
because an audit on an odd machine (a VM without SMBIOS, a desktop without battery) must
still produce a report.

sysfs is read directly (it is the kernel's own data and needs no tool); dmidecode and lspci
run through the command gateway. ``sys_root`` / ``proc_root`` point at a recorded tree in tests.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import socket
from pathlib import Path

from agent import commands
from agent.audit import dmidecode
from agent.audit.edid import decode_edid
from agent.errors import ArdoiseError, ToolMissing
from agent.records import (
    BatteryInfo,
    CpuInfo,
    DisplayInfo,
    DmiInfo,
    GpuInfo,
    MachineInfo,
    MemoryInfo,
    NetInterface,
)

log = logging.getLogger("ardoise.audit.machine")

# SMBIOS 3.x §7.4.1 chassis types, as /sys/class/dmi/id/chassis_type gives the number.
CHASSIS_TYPES = {
    1: "Other", 2: "Unknown", 3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box", 6: "Mini Tower",
    7: "Tower", 8: "Portable", 9: "Laptop", 10: "Notebook", 11: "Hand Held", 12: "Docking Station",
    13: "All in One", 14: "Sub Notebook", 15: "Space-saving", 16: "Lunch Box", 17: "Main Server Chassis",
    18: "Expansion Chassis", 19: "SubChassis", 20: "Bus Expansion Chassis", 21: "Peripheral Chassis",
    22: "RAID Chassis", 23: "Rack Mount Chassis", 24: "Sealed-case PC", 25: "Multi-system chassis",
    26: "Compact PCI", 27: "Advanced TCA", 28: "Blade", 29: "Blade Enclosure", 30: "Tablet",
    31: "Convertible", 32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC", 35: "Mini PC", 36: "Stick PC",
}  # fmt: skip

_DMI_FIELDS = {
    "system_vendor": "sys_vendor",
    "system_product": "product_name",
    "system_version": "product_version",
    "system_serial": "product_serial",
    "system_uuid": "product_uuid",
    "system_sku": "product_sku",
    "system_family": "product_family",
    "chassis_vendor": "chassis_vendor",
    "chassis_serial": "chassis_serial",
    "bios_vendor": "bios_vendor",
    "bios_version": "bios_version",
    "bios_date": "bios_date",
    "board_vendor": "board_vendor",
    "board_name": "board_name",
    "board_version": "board_version",
    "board_serial": "board_serial",
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _tool_failure(exc: ArdoiseError) -> str:
    return str(exc)


# --------------------------------------------------------------------------- DMI


def read_dmi(sys_root: str = "/sys") -> tuple[DmiInfo | None, str | None]:
    base = Path(sys_root) / "class" / "dmi" / "id"
    if base.is_dir():
        values = {name: dmidecode.clean(_read(base / attr)) for name, attr in _DMI_FIELDS.items()}
        chassis = _read_int(base / "chassis_type")
        info = DmiInfo(**values, chassis_type=CHASSIS_TYPES.get(chassis) if chassis else None, source="sysfs")
        if any(v for v in values.values()):
            return info, None
    # No sysfs DMI (old kernel, no CONFIG_DMI_SYSFS): ask dmidecode, which reads the tables itself.
    try:
        result = commands.run(["dmidecode", "-t", "0,1,2,3"], timeout=30)
    except ToolMissing:
        return None, "no /sys/class/dmi/id and dmidecode is not installed"
    except ArdoiseError as exc:
        return None, f"no /sys/class/dmi/id; {_tool_failure(exc)}"
    info = dmidecode.dmi_info(dmidecode.parse(result.stdout))
    if info is None:
        why = (result.stderr.strip().splitlines() or ["no SMBIOS/DMI table found"])[-1]
        return None, f"no /sys/class/dmi/id and dmidecode found no SMBIOS table ({why})"
    return info, None


# --------------------------------------------------------------------------- CPU


def physical_cores(sys_root: str = "/sys") -> int | None:
    base = Path(sys_root) / "devices" / "system" / "cpu"
    pairs = set()
    for cpu in base.glob("cpu[0-9]*"):
        package = _read(cpu / "topology" / "physical_package_id")
        core = _read(cpu / "topology" / "core_id")
        if package is not None and core is not None:
            pairs.add((package, core))
    return len(pairs) or None


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict:
    # py-cpuinfo runs CPUID in a child Python process (about 2 s); the CPU does not change
    # while the agent runs, so one answer per process is enough (shelf mode audits often).
    import cpuinfo

    return cpuinfo.get_cpu_info()


def read_cpu(sys_root: str = "/sys") -> tuple[CpuInfo | None, str | None]:
    try:
        raw = _cpuinfo()
    except Exception as exc:  # noqa: BLE001 - py-cpuinfo can fail in odd ways on odd CPUs
        return None, f"py-cpuinfo failed: {type(exc).__name__}: {exc}"
    flags = sorted(raw.get("flags") or [])
    hz = raw.get("hz_advertised")
    return (
        CpuInfo(
            brand=raw.get("brand_raw"),
            vendor=raw.get("vendor_id_raw"),
            arch=raw.get("arch"),
            cores=physical_cores(sys_root),
            threads=raw.get("count") or os.cpu_count(),
            advertised_hz=hz[0] if isinstance(hz, (list, tuple)) and hz and hz[0] else None,
            aes="aes" in flags if flags else None,
            flags=flags,
        ),
        None,
    )


# --------------------------------------------------------------------------- memory


def mem_total_bytes(proc_root: str = "/proc") -> int | None:
    for line in (_read(Path(proc_root) / "meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024  # /proc/meminfo's "kB" are KiB
    return None


def read_memory(proc_root: str = "/proc") -> tuple[MemoryInfo | None, dict[str, str]]:
    missing: dict[str, str] = {}
    info = MemoryInfo(total_bytes=mem_total_bytes(proc_root))
    if info.total_bytes is None:
        missing["memory.total_bytes"] = f"no MemTotal in {proc_root}/meminfo"
    try:
        result = commands.run(["dmidecode", "-t", "memory"], timeout=30)
    except ToolMissing:
        missing["memory.modules"] = "dmidecode is not installed"
        return info, missing
    except ArdoiseError as exc:
        missing["memory.modules"] = _tool_failure(exc)
        return info, missing
    modules = dmidecode.memory_modules(dmidecode.parse(result.stdout))
    if not modules:
        why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        missing["memory.modules"] = f"dmidecode found no memory devices in SMBIOS ({why})"
        return info, missing
    info.modules = modules
    info.slots_total = len(modules)
    populated = [m for m in modules if m.size_bytes]
    info.slots_used = len(populated)
    info.installed_bytes = sum(m.size_bytes or 0 for m in populated)
    return info, missing


# --------------------------------------------------------------------------- batteries


def read_batteries(sys_root: str = "/sys") -> tuple[list[BatteryInfo] | None, str | None]:
    base = Path(sys_root) / "class" / "power_supply"
    batteries = []
    for d in sorted(base.glob("*")):
        if _read(d / "type") != "Battery" or _read(d / "scope") == "Device":
            continue  # scope Device: a mouse's or a headset's battery, not the machine's
        # energy_* is in µWh, charge_* in µAh (kernel power_supply ABI); report mWh / mAh.
        if (d / "energy_full_design").exists():
            unit, design, full = "mWh", _read_int(d / "energy_full_design"), _read_int(d / "energy_full")
        else:
            unit, design, full = "mAh", _read_int(d / "charge_full_design"), _read_int(d / "charge_full")
        health = round(100.0 * full / design, 1) if design and full is not None else None
        cycles = _read_int(d / "cycle_count")
        batteries.append(
            BatteryInfo(
                name=d.name,
                manufacturer=_read(d / "manufacturer") or None,
                model=_read(d / "model_name") or None,
                serial=_read(d / "serial_number") or None,
                technology=_read(d / "technology") or None,
                status=_read(d / "status") or None,
                unit=unit,
                design_capacity=design / 1000 if design is not None else None,
                full_capacity=full / 1000 if full is not None else None,
                health_percent=health,
                cycle_count=cycles if cycles else None,  # 0 means "not reported" on most firmware
            )
        )
    if not batteries:
        return None, "no battery in /sys/class/power_supply (desktop, server or VM)"
    return batteries, None


# --------------------------------------------------------------------------- GPUs


def parse_lspci_mm(text: str) -> dict[str, tuple[str | None, str | None]]:
    """``lspci -mm -nn`` -> {slot: (vendor name, device name)} (names without the [id])."""

    def name(field: str) -> str | None:
        field = field.rsplit(" [", 1)[0].strip() if field.endswith("]") else field.strip()
        return field or None

    out = {}
    for line in text.splitlines():
        try:
            parts = [p for p in shlex.split(line) if not p.startswith("-")]
        except ValueError:
            continue
        if len(parts) >= 4:
            out[parts[0]] = (name(parts[2]), name(parts[3]))
    return out


def read_gpus(sys_root: str = "/sys") -> tuple[list[GpuInfo] | None, str | None]:
    base = Path(sys_root) / "bus" / "pci" / "devices"
    gpus = []
    for d in sorted(base.glob("*")):
        cls = _read(d / "class") or ""
        if not cls.startswith("0x03"):  # PCI base class 03h: display controller
            continue
        driver = Path(os.path.realpath(d / "driver")).name if (d / "driver").exists() else None
        gpus.append(
            GpuInfo(
                slot=d.name,
                vendor_id=(_read(d / "vendor") or "").removeprefix("0x") or None,
                device_id=(_read(d / "device") or "").removeprefix("0x") or None,
                driver=driver,
            )
        )
    if not gpus:
        return None, "no PCI display controller (class 03) in /sys/bus/pci/devices"
    try:
        names = parse_lspci_mm(commands.run(["lspci", "-mm", "-nn"], timeout=30).stdout)
    except ArdoiseError as exc:
        log.info("lspci unavailable, GPU names left empty: %s", exc)
        names = {}
    for g in gpus:
        short = g.slot.split(":", 1)[1] if g.slot.count(":") == 2 else g.slot  # lspci omits domain 0000
        g.vendor, g.device = names.get(g.slot) or names.get(short) or (None, None)
    return gpus, None


# --------------------------------------------------------------------------- network


def read_nics(sys_root: str = "/sys") -> tuple[list[NetInterface] | None, str | None]:
    base = Path(sys_root) / "class" / "net"
    nics = []
    for d in sorted(base.glob("*")):
        if not (d / "device").exists():
            continue  # lo, bridges, veth, tun, ifb: no hardware behind them
        dev = d / "device"
        driver = Path(os.path.realpath(dev / "driver")).name if (dev / "driver").exists() else None
        nics.append(
            NetInterface(
                name=d.name,
                mac=_read(d / "address") or None,
                kind="wireless" if (d / "wireless").exists() or (d / "phy80211").exists() else "wired",
                driver=driver,
                vendor_id=(_read(dev / "vendor") or "").removeprefix("0x") or None,
                device_id=(_read(dev / "device") or "").removeprefix("0x") or None,
            )
        )
    if not nics:
        return None, "no hardware network interface in /sys/class/net"
    return nics, None


# --------------------------------------------------------------------------- displays


def read_displays(sys_root: str = "/sys") -> tuple[list[DisplayInfo] | None, str | None]:
    base = Path(sys_root) / "class" / "drm"
    if not base.is_dir():
        return None, "no /sys/class/drm (no graphics driver loaded)"
    displays, problems = [], []
    for d in sorted(base.glob("card*-*")):
        try:
            data = (d / "edid").read_bytes()
        except OSError:
            continue
        if not data:
            continue  # connector with nothing plugged in
        connector = d.name.split("-", 1)[1]
        try:
            displays.append(decode_edid(data, connector))
        except ArdoiseError as exc:
            problems.append(str(exc))
    if not displays:
        return None, "; ".join(problems) or "no display with an EDID on any connector"
    return displays, None


# --------------------------------------------------------------------------- all


def read_machine(*, sys_root: str = "/sys", proc_root: str = "/proc") -> MachineInfo:
    m = MachineInfo(hostname=socket.gethostname() or None)
    missing: dict[str, str] = {}

    def take(key: str, pair):
        value, reason = pair
        if reason:
            missing[key] = reason
        return value

    m.dmi = take("dmi", read_dmi(sys_root))
    m.cpu = take("cpu", read_cpu(sys_root))
    m.memory, mem_missing = read_memory(proc_root)
    missing.update(mem_missing)
    m.batteries = take("batteries", read_batteries(sys_root))
    m.gpus = take("gpus", read_gpus(sys_root))
    m.nics = take("nics", read_nics(sys_root))
    m.displays = take("displays", read_displays(sys_root))
    m.missing = missing
    return m
