"""SanitizeResults and configs shaped like the real stages', for the certificate tests."""

from __future__ import annotations

from agent.config import Config, Operator
from agent.records import (
    AuditReport,
    BatteryInfo,
    DiskAudit,
    DiskHealth,
    DiskVerdict,
    DmiInfo,
    MachineInfo,
    SmartSummary,
    Category,
    Disk,
    HiddenAreas,
    LbaRange,
    Media,
    Outcome,
    PassResult,
    SanitizeResult,
    StepResult,
    StepStatus,
    Transport,
    VerificationResult,
)

T0, T1 = "2026-11-27T10:00:00Z", "2026-11-27T10:20:00Z"


def config(**kw) -> Config:
    c = Config.default()
    c.operator = Operator(name="Camille Martin", title="Technicienne", organization="Atelier Réemploi",
                          location="Lyon", contact="+33 4 00 00 00 00")
    c.lot = "LOT-2026-11"
    for k, v in kw.items():
        setattr(c, k, v)
    return c


def disk(serial: str | None = "WD-WCC4N1234567", **kw) -> Disk:
    base = dict(path="/dev/sdb", name="sdb", transport=Transport.SATA, media=Media.HDD, model="WDC WD10EZEX-08W",
                vendor="Western Digital", serial=serial, firmware="01.01A01", size_bytes=1_000_204_886_016)
    base.update(kw)
    return Disk(**base)


def overwrite_success(serial: str | None = "WD-WCC4N1234567") -> SanitizeResult:
    size = 1_000_204_886_016
    step = StepResult(
        method="overwrite:zero", category=Category.CLEAR, status=StepStatus.SUCCESS, started_at=T0, finished_at=T1,
        passes=[PassResult("zero", size, 1190.25)], bytes_written=size, duration_s=1200.5,
    )
    ver = VerificationResult("sample", "passed", bytes_read=size // 10, duration_s=95.5, seed="5eed",
                             sampled=[LbaRange(i * 1000, i * 1000 + 8) for i in range(1000)], coverage=0.1)
    return SanitizeResult(
        disk=disk(serial), outcome=Outcome.SUCCESS, category=Category.CLEAR, method="overwrite:zero", steps=[step],
        verification=ver, hidden_areas=HiddenAreas(1953525168, 1953525168, 1953525168, False, False),
        bytes_written=size, started_at=T0, finished_at=T1, duration_s=1200.5, throughput_bps=833_156_000,
    )


def purge_success() -> SanitizeResult:
    refused = StepResult(method="nvme-sanitize-crypto", category=None, status=StepStatus.UNSUPPORTED,
                         error="sanicap does not offer crypto erase",
                         commands=[{"argv": ["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"], "exit_code": 0, "duration_s": 0.02}])
    ok = StepResult(method="nvme-format-crypto", category=Category.PURGE, status=StepStatus.SUCCESS, started_at=T0, finished_at=T1,
                    commands=[{"argv": ["nvme", "format", "/dev/nvme0n1", "--ses=2", "--force"], "exit_code": 0,
                               "stdout_tail": "Success formatting namespace:1", "stderr_tail": "", "duration_s": 3.5}])
    ver = VerificationResult("sample", "passed", bytes_read=51_200_000_000, duration_s=60.0, seed="abc",
                             sampled=[LbaRange(0, 8)], coverage=0.1, notes=["canaries gone"])
    d = disk("S4EWNX0R123456", path="/dev/nvme0n1", name="nvme0n1", transport=Transport.NVME, media=Media.NVME,
             vendor=None, model="Samsung SSD 970 EVO Plus 500GB", size_bytes=500_107_862_016)
    return SanitizeResult(d, Outcome.SUCCESS, Category.PURGE, "nvme-format-crypto", steps=[refused, ok], verification=ver,
                          started_at=T0, finished_at=T1, duration_s=64.0)


def failed_with_media_errors() -> SanitizeResult:
    errs = [LbaRange(1000, 1016), LbaRange(90000, 90008)]
    step = StepResult(method="overwrite:zero", category=None, status=StepStatus.FAILED, started_at=T0, finished_at=T1,
                      passes=[PassResult("zero", 999_000_000, 300.0, error_ranges=errs)], error="2 unreadable ranges after retries",
                      bytes_written=999_000_000, duration_s=300.0, error_ranges=errs)
    ver = VerificationResult("sample", "failed", bytes_read=1_000_000, read_errors=[LbaRange(1000, 1016)])
    return SanitizeResult(disk("BADDRIVE01"), Outcome.FAILED, None, "overwrite:zero", steps=[step], verification=ver,
                          bytes_written=999_000_000, started_at=T0, finished_at=T1, duration_s=300.0, error_ranges=errs,
                          notes=["2 unreadable ranges after retries"])


def interrupted() -> SanitizeResult:
    step = StepResult(method="overwrite:dod-3pass", category=None, status=StepStatus.INTERRUPTED, started_at=T0,
                      passes=[PassResult("0x00", 400_000_000, 100.0), PassResult("0xff", 12_345_678, 3.0)],
                      bytes_written=412_345_678, duration_s=103.0, error="cancelled by the operator")
    return SanitizeResult(disk("INTERRUPT01"), Outcome.INTERRUPTED, None, "overwrite:dod-3pass", steps=[step],
                          verification=None, bytes_written=412_345_678, started_at=T0, duration_s=103.0, resumed=True)


def audit_for(result: SanitizeResult, verdict: str = "good") -> AuditReport:
    """An ``AuditReport`` of a ThinkPad holding ``result``'s disk, with a SMART verdict."""
    smart = SmartSummary(device=result.disk.path, protocol="ATA", model=result.disk.model, serial=result.disk.serial,
                         smart_passed=verdict != "failing", power_on_hours=12000, temperature_c=34,
                         raw={"huge": "x" * 10000})
    machine = MachineInfo(hostname="pc-042", dmi=DmiInfo(system_vendor="LENOVO", system_product="ThinkPad T480",
                                                         system_serial="PF1ABCDE"),
                          batteries=[BatteryInfo(name="BAT0", health_percent=81.5, design_capacity=57000.0)])
    health = DiskHealth(DiskVerdict(verdict), [] if verdict == "good" else [f"drive is {verdict}"])
    return AuditReport(machine=machine, disks=[DiskAudit(result.disk, smart, health)])


def out_of_space() -> SanitizeResult:
    """A 64 MiB loop device whose write stopped at 16 MiB on ENOSPC (as seen when tried)."""
    d = disk("LOOPSER1", path="/dev/loop3", name="loop3", size_bytes=67_108_864, vendor=None, model=None)
    step = StepResult(method="overwrite:zero", category=None, status=StepStatus.FAILED, started_at=T0, finished_at=T1,
                      passes=[PassResult("zero", 16_777_216, 1.0)], error="/dev/loop3: No space left on device",
                      bytes_written=16_777_216, duration_s=1.0)
    return SanitizeResult(d, Outcome.FAILED, None, "overwrite:zero", steps=[step], verification=None,
                          bytes_written=16_777_216, started_at=T0, finished_at=T1, duration_s=1.0)


def machine_audit(result: SanitizeResult) -> AuditReport:
    """``audit_for`` with the CPU and memory a real laptop reports."""
    from agent.records import CpuInfo, MemoryInfo

    a = audit_for(result)
    a.machine.cpu = CpuInfo(brand="Intel(R) Core(TM) i5-8350U CPU @ 1.70GHz", cores=4, threads=8, advertised_hz=2596126000,
                            flags=["fpu", "vme"])
    a.machine.memory = MemoryInfo(total_bytes=25275990016)
    return a
