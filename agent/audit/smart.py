"""SMART through ``smartctl -x --json``: the right ``-d`` type, the exit bitmask, a summary.

Why smartctl's JSON and not a Python SMART library: smartmontools knows thousands of drive
quirks and USB bridges (its drivedb), speaks ATA, SCSI and NVMe, and its JSON output is a
stable, documented format. Libraries such as pySMART parse smartctl's *text* output, which
changes between versions.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping

from agent import commands
from agent.audit.verdict import Thresholds, disk_health
from agent.errors import ToolError, ToolMissing
from agent.records import DiskHealth, DiskVerdict, Disk, SelfTest, SmartSummary, Transport

log = logging.getLogger("ardoise.audit.smart")

SMARTCTL_TIMEOUT = 90.0

# smartctl(8), EXIT STATUS: bits 0-2 say the query failed (the answer is missing or
# partial), bits 3-7 are findings about the drive.
EXIT_BITS = (
    "command line did not parse",
    "device open failed or device did not identify itself",
    "a SMART or other command to the disk failed, or a SMART data structure had a bad checksum",
    "SMART status check returned DISK FAILING",
    "prefail attributes are at or below their threshold",
    "some attributes were at or below their threshold in the past",
    "the device error log contains records of errors",
    "the device self-test log contains records of errors",
)
QUERY_FAILED_MASK = 0b011  # bits 0 and 1: nothing usable came back
PARTIAL_MASK = 0b100  # bit 2: some commands failed, what came back is still worth reading

# USB-to-NVMe bridges need smartctl's vendor pass-through (smartctl(8) -d sntjmicron,
# sntasmedia, sntrealtek); every other USB bridge is tried with SAT (SCSI/ATA Translation).
NVME_USB_BRIDGES = {
    ("152d", "0583"): "sntjmicron",
    ("152d", "0562"): "sntjmicron",
    ("174c", "2362"): "sntasmedia",
    ("0bda", "9210"): "sntrealtek",
    ("0bda", "9220"): "sntrealtek",
}

# Transports with no SMART to ask for.
NO_SMART = {
    Transport.LOOP: "loop devices have no SMART",
    Transport.RAM: "RAM disks have no SMART",
    Transport.FILE: "regular files have no SMART",
    Transport.VIRTIO: "virtio disks have no SMART (the host holds the real drive)",
    Transport.MMC: "MMC/SD cards have no SMART",
}


def decode_exit_status(status: int) -> list[str]:
    return [f"bit {i}: {text}" for i, text in enumerate(EXIT_BITS) if status & (1 << i)]


def device_type_for(disk: Disk) -> str | None:
    """The ``-d`` argument for this disk, or None to let smartctl choose."""
    if disk.transport == Transport.NVME:
        return "nvme"
    if disk.transport == Transport.USB:
        bridge = disk.usb_bridge
        if bridge is not None and bridge.vendor_id and bridge.product_id:
            key = (bridge.vendor_id.lower(), bridge.product_id.lower())
            if key in NVME_USB_BRIDGES:
                return NVME_USB_BRIDGES[key]
        return "sat"
    return None


def smartctl_argv(disk: Disk) -> list[str]:
    dtype = device_type_for(disk)
    return ["smartctl", "-x", "--json", *(["-d", dtype] if dtype else []), disk.path]


# ----------------------------------------------------------------------------- parsing


def _get(data: Any, *path: str | int) -> Any:
    """``data[path0][path1]...`` or None when any step is missing or of the wrong shape."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(data, list) or len(data) <= key:
                return None
        elif not isinstance(data, dict):
            return None
        data = data[key] if isinstance(key, int) else data.get(key)
    return data


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _attributes(data: Mapping) -> dict[int, dict]:
    table = _get(data, "ata_smart_attributes", "table")
    if not isinstance(table, list):
        return {}
    return {a["id"]: a for a in table if isinstance(a, dict) and isinstance(a.get("id"), int)}


def _attr_raw(attrs: dict[int, dict], attr_id: int) -> int | None:
    """A defect counter's raw value. When it does not fit in 32 bits the vendor packed
    several numbers into the 48-bit field, and smartctl's raw string leads with the count."""
    value = _int(_get(attrs.get(attr_id), "raw", "value"))
    if value is not None and value < 1 << 32:
        return value
    return _raw_string_count(attrs, attr_id) if value is not None else None


def _raw_string_count(attrs: dict[int, dict], attr_id: int) -> int | None:
    """The leading number of smartctl's raw string: Power_On_Hours is often packed
    ("2725 (151 234 0)", "12345h+12m+30.000s") and the string is the decoded hours."""
    text = _get(attrs.get(attr_id), "raw", "string")
    if isinstance(text, str):
        m = re.match(r"\s*(\d+)", text)
        if m:
            return int(m.group(1))
    return _int(_get(attrs.get(attr_id), "raw", "value"))


def _self_tests(data: Mapping) -> list[SelfTest]:
    tests: list[SelfTest] = []
    for log_name in ("extended", "standard"):
        table = _get(data, "ata_smart_self_test_log", log_name, "table")
        if isinstance(table, list) and table:
            for t in table:
                tests.append(
                    SelfTest(
                        type=_get(t, "type", "string"),
                        status=_get(t, "status", "string"),
                        passed=_get(t, "status", "passed") if isinstance(_get(t, "status", "passed"), bool) else None,
                        lifetime_hours=_int(_get(t, "lifetime_hours")),
                    )
                )
            return tests  # the extended log, when present, includes the standard one's entries
    table = _get(data, "nvme_self_test_log", "table")
    if isinstance(table, list):
        for t in table:
            result = _int(_get(t, "self_test_result", "value"))
            tests.append(
                SelfTest(
                    type=_get(t, "self_test_code", "string"),
                    status=_get(t, "self_test_result", "string"),
                    passed=None if result is None else result == 0,
                    lifetime_hours=_int(_get(t, "power_on_hours")),
                )
            )
        return tests
    for i in range(20):  # SCSI: scsi_self_test_0 ... scsi_self_test_19, newest first
        t = data.get(f"scsi_self_test_{i}")
        if not isinstance(t, dict):
            break
        result = _int(_get(t, "result", "value"))
        tests.append(
            SelfTest(
                type=_get(t, "code", "string"),
                status=_get(t, "result", "string"),
                passed=None if result is None else result == 0,
                lifetime_hours=_int(_get(t, "power_on_time", "hours")),
            )
        )
    return tests


def parse_smartctl(
    data: Any, *, device: str, argv: list[str] | None = None, returncode: int | None = None
) -> SmartSummary:
    """Summarise one smartctl JSON document. Never raises: what cannot be read stays None,
    and the verdict (decided later) says ``unknown`` when nothing could."""
    s = SmartSummary(device=device, argv=list(argv or []))
    if not isinstance(data, dict):
        s.query_failed = True
        s.messages.append("smartctl output is not a JSON object")
        return s
    status = _int(_get(data, "smartctl", "exit_status"))
    s.exit_status = status if status is not None else returncode
    if s.exit_status is not None:
        s.exit_bits = decode_exit_status(s.exit_status)
        s.query_failed = bool(s.exit_status & QUERY_FAILED_MASK)
    for m in _get(data, "smartctl", "messages") or []:
        text = _get(m, "string")
        if isinstance(text, str):
            s.messages.append(text)
    s.device_type = _get(data, "device", "type")
    s.protocol = _get(data, "device", "protocol")
    s.model = _get(data, "model_name") or _get(data, "product")
    s.serial = _get(data, "serial_number")
    s.firmware = _get(data, "firmware_version") or _get(data, "revision")
    passed = _get(data, "smart_status", "passed")
    s.smart_passed = passed if isinstance(passed, bool) else None
    s.power_on_hours = _int(_get(data, "power_on_time", "hours"))
    s.power_cycles = _int(_get(data, "power_cycle_count"))
    s.temperature_c = _int(_get(data, "temperature", "current"))

    attrs = _attributes(data)
    if attrs:
        s.reallocated_sectors = _attr_raw(attrs, 5)
        s.pending_sectors = _attr_raw(attrs, 197)
        s.offline_uncorrectable = _attr_raw(attrs, 198)
        s.reported_uncorrect = _attr_raw(attrs, 187)
        if s.power_on_hours is None:
            s.power_on_hours = _raw_string_count(attrs, 9)
        for a in attrs.values():
            when = a.get("when_failed")
            if when in ("now", "past"):
                state = "failing now" if when == "now" else "failed in the past"
                s.failing_attributes.append(f"{a.get('id')} {a.get('name')} ({state})")

    for page in _get(data, "ata_device_statistics", "pages") or []:
        for entry in _get(page, "table") or []:
            if _get(entry, "name") == "Percentage Used Endurance Indicator":
                s.endurance_used_percent = _int(_get(entry, "value"))

    nvme = _get(data, "nvme_smart_health_information_log")
    if isinstance(nvme, dict):
        s.nvme_percentage_used = _int(nvme.get("percentage_used"))
        s.endurance_used_percent = s.nvme_percentage_used
        s.nvme_media_errors = _int(nvme.get("media_errors"))
        s.nvme_available_spare = _int(nvme.get("available_spare"))
        s.nvme_available_spare_threshold = _int(nvme.get("available_spare_threshold"))
        s.nvme_critical_warning = _int(nvme.get("critical_warning"))
        if s.power_on_hours is None:
            s.power_on_hours = _int(nvme.get("power_on_hours"))
        if s.temperature_c is None:
            s.temperature_c = _int(nvme.get("temperature"))

    s.scsi_grown_defects = _int(data.get("scsi_grown_defect_list"))
    counters = data.get("scsi_error_counter_log")
    if isinstance(counters, dict):
        totals = [_int(_get(counters, k, "total_uncorrected_errors")) for k in ("read", "write", "verify")]
        known = [t for t in totals if t is not None]
        s.scsi_uncorrected_errors = sum(known) if known else None

    s.self_tests = _self_tests(data)
    return s


def summarize(
    data: Any,
    *,
    device: str,
    argv: list[str] | None = None,
    returncode: int | None = None,
    thresholds: Thresholds | Mapping | None = None,
    keep_raw: bool = False,
) -> SmartSummary:
    summary = parse_smartctl(data, device=device, argv=argv, returncode=returncode)
    summary.health = disk_health(summary, thresholds)
    if keep_raw and isinstance(data, dict):
        summary.raw = data
    return summary


def _unknown(disk: Disk, reason: str, **fields: Any) -> SmartSummary:
    summary = SmartSummary(device=disk.path, messages=[reason], **fields)
    summary.health = DiskHealth(DiskVerdict.UNKNOWN, [reason])
    return summary


def read_smart(disk: Disk, *, thresholds: Thresholds | Mapping | None = None, keep_raw: bool = False) -> SmartSummary:
    """Ask smartctl about ``disk``. Failures become an ``unknown`` verdict with the reason,
    never an exception: an audit must survive a drive that does not answer."""
    if disk.transport in NO_SMART:
        return _unknown(disk, NO_SMART[disk.transport])
    argv = smartctl_argv(disk)
    dtype = device_type_for(disk)
    try:
        result = commands.run(argv, timeout=SMARTCTL_TIMEOUT)
    except ToolMissing:
        return _unknown(disk, "smartctl is not installed", argv=argv, device_type=dtype, query_failed=True)
    except ToolError as exc:  # timeout, cannot execute
        return _unknown(disk, str(exc), argv=argv, device_type=dtype, query_failed=True)
    try:
        data = result.json()
    except ToolError as exc:
        return _unknown(
            disk,
            f"{exc} (exit {result.returncode})",
            argv=argv,
            device_type=dtype,
            exit_status=result.returncode,
            exit_bits=decode_exit_status(result.returncode),
            query_failed=True,
        )
    summary = summarize(
        data, device=disk.path, argv=argv, returncode=result.returncode, thresholds=thresholds, keep_raw=keep_raw
    )
    summary.device_type = dtype or summary.device_type
    return summary
