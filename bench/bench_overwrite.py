#!/usr/bin/env python3
"""Overwrite/verify benchmark: the agent's passes next to `dd` on the same loop devices.

Run as root from the repository root (not part of pytest):

    .venv/bin/python bench/bench_overwrite.py [--size-mib 8192] [--runs 5]

The single device is 8 GiB by default: a NIST §4.7 sample is ~2,000 requests whatever the
size, so on a small device their fixed cost outweighs the 10 % of bytes and the sampled
ratio says more about the loop device than about the sampler (BENCHMARKS.md has both).

Loop devices are backed by files in /dev/shm (pre-filled, so tmpfs page allocation is not
timed) with --direct-io=on, and detached by name at the end. Each measurement alternates
dd and the agent, `--runs` times, and reports the median. Targets (issue 3):

  zero pass        >= 0.97 x dd if=/dev/zero bs=4M oflag=direct
  random pass      >= 0.90 x that dd
  full verify      >= 0.95 x dd iflag=direct read
  sampled verify   <= 0.15 x the time of full verification
  8 devices        >= 0.90 x 8 dd run together
  peak RSS         <= 100 MB while wiping 16 devices (a separate `ardoise wipe` process)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.records import Disk  # noqa: E402
from agent.sanitize import overwrite  # noqa: E402
from agent.verify import Content, verify_full, verify_sample  # noqa: E402
from agent.cli.wipe import wipe_all  # noqa: E402

MIB = 1 << 20


class Loops:
    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir
        self.devices: list[str] = []

    def create(self, size: int) -> str:
        backing = os.path.join(self.tmpdir, f"bench{len(self.devices)}.img")
        # Allocate every tmpfs page up front: the first write to a sparse tmpfs file is
        # page allocation, not I/O, and would favour whichever ran second.
        subprocess.run(["dd", "if=/dev/zero", f"of={backing}", "bs=4M", f"count={size // (4 * MIB)}", "status=none"], check=True)
        dev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", backing], check=True, capture_output=True, text=True).stdout.strip()
        self.devices.append(dev)
        return dev

    def detach_all(self) -> None:
        for dev in reversed(self.devices):
            subprocess.run(["losetup", "--detach", dev], check=False)
        self.devices.clear()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _blocks4m(dev: str) -> int:
    size = int(subprocess.run(["blockdev", "--getsize64", dev], check=True, capture_output=True, text=True).stdout)
    return size // (4 * MIB)


def dd_write(dev: str) -> subprocess.Popen:
    # count= so dd stops at the end instead of failing with ENOSPC there.
    return subprocess.Popen(["dd", "if=/dev/zero", f"of={dev}", "bs=4M", f"count={_blocks4m(dev)}", "oflag=direct", "status=none"])


def dd_read(dev: str) -> subprocess.Popen:
    return subprocess.Popen(["dd", f"if={dev}", "of=/dev/null", "bs=4M", "iflag=direct", "status=none"])


def run_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"dd failed: {p.args}")


def wipe(dev: str, method: str) -> None:
    step = overwrite.run_overwrite(Disk(path=dev, name=os.path.basename(dev)), method, verify="none")
    if step.status.value != "success":
        raise SystemExit(f"agent wipe failed: {step.error}")


def median_pair(runs: int, a, b) -> tuple[float, float]:
    ta, tb = [], []
    for _ in range(runs):
        ta.append(timed(a))
        tb.append(timed(b))
    return statistics.median(ta), statistics.median(tb)


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1 << 20)
    load = Path("/proc/loadavg").read_text().split()[:3]
    return f"{model}, {os.cpu_count()} CPUs, {mem} GiB RAM, kernel {platform.release()}, Python {platform.python_version()}, load {' '.join(load)}"


def rss_of_wipe(devs: list[str], method: str, tmp: str) -> tuple[float, float]:
    """Peak RSS (MB) of a separate `ardoise wipe` process wiping ``devs`` at once: during
    the wipe itself (passes + verification), and overall (certificates included)."""
    env = dict(os.environ, ARDOISE_STATE_DIR=os.path.join(tmp, "state"))
    proc = subprocess.run(
        [sys.executable, __file__, "--rss-child", method, os.path.join(tmp, "out"), *devs],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"ardoise wipe failed: {proc.stderr[-2000:]}")
    wipe_mb, total_mb = proc.stdout.split()[-2:]
    return float(wipe_mb), float(total_mb)


def rss_child(method: str, out: str, devs: list[str]) -> int:
    """Child of ``rss_of_wipe``: runs `ardoise wipe` in-process, sampling VmRSS every 5 ms
    (VmHWM alone cannot tell the wipe from the certificate rendering that follows it)."""
    import threading

    import agent.cli.wipe as wipe_cli
    from agent.cli import main as cli_main

    peaks = {"wipe": 0, "certify": 0}
    phase = ["wipe"]

    def sample() -> None:
        while True:
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS"):
                    kb = int(line.split()[1])
                    peaks[phase[0]] = max(peaks[phase[0]], kb)
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    write_outputs = wipe_cli._write_outputs

    def marked(*a, **kw):
        phase[0] = "certify"
        return write_outputs(*a, **kw)

    wipe_cli._write_outputs = marked
    rc = cli_main(["wipe", *devs, "--method", method, "--verify", "sample", "--yes", "--out", out])
    time.sleep(0.02)
    hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
    print(f"{peaks['wipe'] / 1000:.1f} {max(hwm, peaks['certify']) / 1000:.1f}")
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=8192, help="single-device size (default 8192)")
    ap.add_argument("--parallel-size-mib", type=int, default=512, help="size of each of the 8 devices (default 512)")
    ap.add_argument("--rss-size-mib", type=int, default=256, help="size of each of the 16 devices (default 256)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", choices=("single", "parallel", "rss"), action="append")
    ap.add_argument("--rss-child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child[0], args.rss_child[1], args.rss_child[2:])
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices)")
    only = set(args.only or ("single", "parallel", "rss"))
    print(f"machine: {machine()}")
    rows: list[tuple[str, float, str, bool]] = []
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="ardoise-bench-") as tmp:
        loops = Loops(tmp)
        try:
            if "single" in only:
                size = args.size_mib * MIB
                dev = loops.create(size)
                gb = size / 1e9
                t_dd, t_zero = median_pair(args.runs, lambda: run_all([dd_write(dev)]), lambda: wipe(dev, "zero"))
                print(f"dd zero write   {gb / t_dd:6.2f} GB/s   agent zero pass   {gb / t_zero:6.2f} GB/s")
                rows.append(("zero pass / dd write", t_dd / t_zero, ">= 0.97", t_dd / t_zero >= 0.97))
                t_dd2, t_rand = median_pair(args.runs, lambda: run_all([dd_write(dev)]), lambda: wipe(dev, "random"))
                print(f"dd zero write   {gb / t_dd2:6.2f} GB/s   agent random pass {gb / t_rand:6.2f} GB/s")
                rows.append(("random pass / dd write", t_dd2 / t_rand, ">= 0.90", t_dd2 / t_rand >= 0.90))

                wipe(dev, "zero")
                zeros = Content.zeros()
                t_ddr, t_full = median_pair(args.runs, lambda: run_all([dd_read(dev)]), lambda: verify_full(dev, zeros))
                print(f"dd direct read  {gb / t_ddr:6.2f} GB/s   agent full verify {gb / t_full:6.2f} GB/s")
                rows.append(("full verify / dd read", t_ddr / t_full, ">= 0.95", t_ddr / t_full >= 0.95))
                t_full2, t_sample = median_pair(args.runs, lambda: verify_full(dev, zeros), lambda: verify_sample(dev, zeros))
                print(f"full verify {t_full2:.3f} s   sampled verify {t_sample:.3f} s")
                rows.append(("sampled / full verify time", t_sample / t_full2, "<= 0.15", t_sample / t_full2 <= 0.15))
                loops.detach_all()
                os.unlink(os.path.join(tmp, "bench0.img"))

            if "parallel" in only:
                size = args.parallel_size_mib * MIB
                devs = [loops.create(size) for _ in range(8)]
                disks = [Disk(path=d, name=os.path.basename(d)) for d in devs]

                def agent8() -> None:
                    overwrite.set_concurrency_hint(8)
                    results = wipe_all(disks, lambda d: overwrite.result_from_step(d, overwrite.run_overwrite(d, "zero", verify="none")))
                    assert all(r.outcome.value == "success" for r in results)

                t_dd8, t_ag8 = median_pair(args.runs, lambda: run_all([dd_write(d) for d in devs]), agent8)
                total = 8 * size / 1e9
                print(f"8 x dd          {total / t_dd8:6.2f} GB/s   agent 8 devices   {total / t_ag8:6.2f} GB/s")
                rows.append(("8 devices / 8 dd", t_dd8 / t_ag8, ">= 0.90", t_dd8 / t_ag8 >= 0.90))
                overwrite.set_concurrency_hint(1)
                loops.detach_all()
                for i in range(8):
                    os.unlink(os.path.join(tmp, f"bench{i}.img"))

            if "rss" in only:
                size = args.rss_size_mib * MIB
                loops.devices.clear()
                devs = [loops.create(size) for _ in range(16)]
                for method in ("zero", "random"):
                    runs = [rss_of_wipe(devs, method, tmp) for _ in range(max(1, args.runs // 2))]
                    peak = statistics.median(r[0] for r in runs)
                    total = statistics.median(r[1] for r in runs)
                    print(f"peak RSS wiping 16 devices ({method}, sample verify): {peak:.1f} MB during the wipe, "
                          f"{total:.1f} MB with the 16 certificates (JSON + PDF) rendered afterwards")
                    rows.append((f"peak RSS, 16 devices, {method} (MB)", peak, "<= 100", peak <= 100))
                    rows.append((f"  same, incl. certificates (MB)", total, "(info)", total <= 100))
        finally:
            loops.detach_all()

    print()
    print(f"{'measure':<36} {'value':>8}  target   met")
    for name, value, target, met in rows:
        print(f"{name:<36} {value:8.3f}  {target:<8} {'yes' if met else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
