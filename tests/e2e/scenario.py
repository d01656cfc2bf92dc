"""What the boots of the end-to-end tests share: the stick's config, the disks, one boot
with its diagnostics kept, and the checks on delivered certificates."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from live_collector import Collector
from vm import BootResult, Machine, VirtualDisk, data_partition, digest_outside, make_stick, mcopy_out, mdir

MiB = 1 << 20
# Budget per boot under TCG, generous because CI machines are shared; the agent must be
# ready long before (target 30 s) and a boot with its wipe takes a few minutes.
BOOT_TIMEOUT = 1500
DIAGNOSTICS = Path("/var/tmp/ardoise-e2e")


def make_config(collector: Collector | None, token: str | None, lot: str, *,
                on_finish: str = "poweroff", extra: str = "") -> str:
    text = (
        "# written by tests/e2e before the boot\n"
        f"lot: {lot}\n"
        "operator:\n  name: E2E Technician\n  organization: Ardoise CI\n  location: QEMU\n"
        f"on_finish: {on_finish}\n"
        "finish_display_seconds: 1\n"
    ) + extra
    if collector is not None:
        # QEMU's user network: the host is 10.0.2.2, so http:// must be allowed explicitly.
        text += f"collector:\n  url: {collector.guest_url}\n  token: {token}\n  allow_insecure_http: true\n"
    return text


def make_disks(tmp_path, specs) -> list[VirtualDisk]:
    """Disk images with planted data, from ``VirtualDisk``s or (kind, serial, size) tuples."""
    disks = []
    for spec in specs:
        d = spec if isinstance(spec, VirtualDisk) else VirtualDisk(tmp_path / f"{spec[1]}.img", *spec)
        d.create(tmp_path)
        disks.append(d)
    return disks


@dataclass
class Run:
    result: BootResult
    stick: Path
    part: object
    before: str
    disks: list

    def assert_unattended_and_clean(self, firmware_line: str) -> None:
        serial, tail = self.result.serial, self.result.serial[-3000:]
        assert "ardoise-image: agent ready" in serial, f"agent never started:\n{tail}"
        assert firmware_line in serial, f"expected {firmware_line!r}:\n{tail}"
        if not self.result.powered_off:
            pytest.fail(f"no power-off by itself within {self.result.seconds:.0f} s "
                        f"(qemu rc={self.result.returncode}); serial tail:\n{tail}")
        # The live system wrote nothing to the stick outside its data partition.
        assert digest_outside(self.stick, self.part) == self.before
        for d in self.disks:
            left = d.marker_count()
            assert left == 0, f"{d.kind} disk {d.serial}: {left} planted marker(s) survived"


def boot(live_image, tmp_path, firmware, specs, config_text, *, network=True) -> Run:
    iso, _, _ = live_image
    stick = make_stick(iso, tmp_path / "stick.img", config_text)
    part = data_partition(stick)
    before = digest_outside(stick, part)
    disks = make_disks(tmp_path, specs)
    machine = Machine(tmp_path, firmware=firmware, network=network)
    result = machine.boot(stick, disks, timeout=BOOT_TIMEOUT)
    keep_diagnostics(firmware, result, stick, part)
    print(f"{firmware}: agent ready after {result.ready_after} s, run {result.seconds:.0f} s")
    return Run(result, stick, part, before, disks)


def keep_diagnostics(name: str, result: BootResult, stick: Path, part) -> None:
    """Serial log and the stick's data partition (agent logs, spool), kept outside pytest's
    rotating temp dirs for whoever reads a failure."""
    out = DIAGNOSTICS / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "serial.log").write_text(result.serial)
    (out / "timing.txt").write_text(f"ready_after={result.ready_after} seconds={result.seconds:.1f} "
                                    f"returncode={result.returncode}\n")
    mcopy_out(stick, part, "/", out / "data")


def spooled_audit(run: Run, tmp_path) -> dict:
    """The payload of the one audit report the run left on the stick's data partition."""
    import base64
    import json

    state = tmp_path / "state-out"
    assert mcopy_out(run.stick, run.part, "/ardoise", state), mdir(run.stick, run.part)
    (path,) = list((state / "spool" / "audits").glob("*.json"))
    envelope = json.loads(path.read_text())
    return json.loads(base64.b64decode(envelope["payload"]))


def by_serial(certs: list[dict]) -> dict[str, dict]:
    return {c["payload"]["media"]["serial"]: c for c in certs}


def assert_signed(collector: Collector, cert: dict) -> None:
    """The collector verified the signature on receipt, and verifies it again now."""
    assert cert["verification"]["valid"], cert["verification"]
    verdict = collector.verify(cert["envelope"])
    assert verdict["valid"], verdict["reasons"]


def assert_valid(collector: Collector, cert: dict) -> None:
    assert_signed(collector, cert)
    assert cert["payload"]["sanitization"]["outcome"] == "success", cert["payload"]["sanitization"]


def wait_for_certificates(collector: Collector, lot: str, serials: set[str], running, timeout: float) -> dict:
    """Poll the collector until it holds a certificate of each of ``serials`` (the guest
    still running): {serial: stored certificate}."""
    deadline = time.monotonic() + timeout
    while True:
        certs = by_serial(collector.certificates(lot))
        if serials <= set(certs):
            return certs
        if running.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"certificates of {sorted(serials - set(certs))} never reached the "
                                 f"collector (have {sorted(certs)}); serial tail:\n{running.serial()[-3000:]}")
        time.sleep(2)
