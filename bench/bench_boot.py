"""Boot time to the agent's first own line under QEMU TCG: an image against a reference
image, booted alternately on the same machine in the same run.

Each boot: the ISO as a USB stick on xHCI (tests/e2e/vm.py's machine: q35, 2 vCPUs,
1.5 GiB, QEMU's default CPU model), no disk and no network, until the agent logs
`ardoise: looking for disks`; then QEMU is stopped. The figure is the wall-clock time from
QEMU's start; the serial log's kernel stamps split it (bench/boot_timeline.py). Images are
booted in turn (reference, image, reference, …) so that the load of a shared machine
falls on both alike; the ratio image/reference is what to read.

    python3 bench/bench_boot.py --ref OLD.iso --iso NEW.iso [--firmware bios uefi ...]
        [--rounds 2] [--keep DIR]

Run as root (QEMU reads the OVMF variable stores the e2e tests build).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))

FIRST_LINE = r"ardoise: (looking for disks|recherche des disques)"


def boot_once(iso: Path, firmware: str, work: Path, timeout: float) -> tuple[float | None, str]:
    from vm import GuestTimeout, Machine, make_stick

    work.mkdir(parents=True, exist_ok=True)
    stick = make_stick(iso, work / "stick.img", "lot: BENCH-BOOT\non_finish: poweroff\n")
    running = Machine(work, firmware=firmware, network=False).start(stick, [])
    seconds = None
    try:
        running.wait_for(FIRST_LINE, timeout)
        seconds = running.elapsed()
    except GuestTimeout:
        pass
    finally:
        result = running.finish()
        stick.unlink(missing_ok=True)
    return seconds, result.serial


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iso", type=Path, required=True)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--firmware", nargs="+", default=["bios", "uefi", "secureboot", "uefi32"])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--keep", type=Path, help="keep each boot's serial log and timing here")
    args = p.parse_args(argv)
    for iso in (args.iso, args.ref):
        if not iso.is_file():
            print(f"bench_boot: {iso}: no such image", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("bench_boot: run as root (QEMU and the e2e helpers' variable stores)", file=sys.stderr)
        return 2
    from boot_timeline import timeline

    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-boot-") as tmp:
        for rnd in range(args.rounds):
            for fw in args.firmware:
                for name, iso in (("ref", args.ref), ("new", args.iso)):
                    load = os.getloadavg()[0]
                    seconds, serial = boot_once(iso, fw, Path(tmp) / f"{fw}-{name}-{rnd}", args.timeout)
                    times.setdefault((fw, name), []).append(seconds if seconds is not None else float("nan"))
                    split = ""
                    if args.keep and seconds is not None:
                        out = args.keep / f"{fw}-{name}-{rnd}"
                        out.mkdir(parents=True, exist_ok=True)
                        (out / "serial.log").write_text(serial)
                        # timing.txt as the e2e tests write it; the "ready" mark is what
                        # boot_timeline.py anchors the guest's clock on.
                        ready = _wall_at_ready(serial, seconds)
                        (out / "timing.txt").write_text(f"ready_after={ready} seconds={seconds:.1f}\n")
                        t = timeline(out)
                        if t:
                            split = "  (" + ", ".join(f"{k} {v:.1f}" for k, v in list(t.items())[1:-1]) + ")"
                    shown = f"{seconds:.1f} s" if seconds is not None else "no first line"
                    print(f"{fw:10} {name} round {rnd + 1}: {shown}, load {load:.1f}{split}", flush=True)
    print()
    print("| firmware | reference | image | ratio image/reference |")
    print("| --- | --- | --- | --- |")
    for fw in args.firmware:
        ref = statistics.median(times[(fw, "ref")])
        new = statistics.median(times[(fw, "new")])
        print(f"| {fw} | {ref:.1f} s | {new:.1f} s | {new / ref:.2f} |")
    return 0


def _wall_at_ready(serial: str, first_line_wall: float) -> float:
    """Wall-clock seconds at 'agent ready', from the wall-clock first line and the guest
    clock's distance between the two (both stamped on the serial log)."""
    import re

    stamps = {}
    for line in serial.splitlines():
        m = re.match(r"^\[\s*(\d+\.\d+)\] (.*)$", line.strip("\r"))
        if not m:
            continue
        if "ardoise-image: agent ready" in m.group(2):
            stamps.setdefault("ready", float(m.group(1)))
        if re.search(FIRST_LINE, m.group(2)):
            stamps.setdefault("first", float(m.group(1)))
    if {"ready", "first"} <= stamps.keys():
        return first_line_wall - (stamps["first"] - stamps["ready"])
    return first_line_wall


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
