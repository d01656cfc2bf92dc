#!/usr/bin/env python3
"""Throughput of ``ardoise-collector netboot`` for a table of laptops booting together.

N concurrent clients (40 by default) each fetch the netboot initrd (``/netboot.cpio``, the
squashfs layers) from a real ``ardoise-collector netboot`` on loopback, in HTTP range
requests of ``--chunk`` bytes on keep-alive connections, as iPXE and GRUB do. Reports the
aggregate rate, the server's peak memory (VmHWM, from /proc) and the ratio against a plain
read of the same bytes from the same file on this machine (page cache, one process).
Bounded: at most ``--seconds`` of transfer, then every client stops.

    .venv/bin/python bench/bench_netboot.py [--clients 40] [--layer-mib 160] [--chunk-mib 4]
        [--seconds 60] [--iso dist/ardoise-<v>-amd64.iso]

Without --iso it builds a small ISO (pycdlib) whose base layer is ``--layer-mib`` MiB of
random bytes, with its manifest, in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_iso(workdir: Path, layer_mib: int) -> Path:
    import pycdlib

    content = {"vmlinuz": os.urandom(8 * MiB), "initrd.img": os.urandom(10 * MiB),
               "10-base.squashfs": os.urandom(layer_mib * MiB), "20-ardoise.squashfs": os.urandom(4 * MiB)}
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09")
    iso.add_directory("/LIVE", rr_name="live")
    for i, (name, data) in enumerate(content.items()):
        iso.add_fp(io.BytesIO(data), len(data), f"/LIVE/F{i}.;1", rr_name=name)
    path = workdir / "ardoise-bench-amd64.iso"
    iso.write(str(path))
    iso.close()
    sums = "".join(f"sha256: live/{n} {hashlib.sha256(d).hexdigest()}\n" for n, d in content.items())
    path.with_name("ardoise-bench-amd64.manifest.txt").write_text("agent_version: bench\n" + sums)
    return path


def start(iso: Path, workdir: Path) -> tuple[subprocess.Popen, int]:
    config = workdir / "ardoise.yaml"
    config.write_text("collector:\n  url: https://collector.example\nlot: BENCH\n")
    port = free_port()
    log = open(workdir / "netboot.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "server_stub.cli", "netboot", "--iso", str(iso),
                             "--config", str(config), "--db", f"sqlite:///{workdir / 'c.db'}",
                             "--host", "127.0.0.1", "--port", str(port), "--work-dir", str(workdir)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/boot.ipxe", timeout=2).read()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"netboot exited: {(workdir / 'netboot.log').read_text()[-2000:]}")
            time.sleep(0.3)
    sys.exit("netboot did not start")


async def client(port: int, size: int, chunk: int, stop_at: float) -> int:
    """Fetch the whole file in range requests on one connection; bytes received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    got = 0
    try:
        for start_byte in range(0, size, chunk):
            if time.monotonic() > stop_at:
                break
            end = min(size, start_byte + chunk) - 1
            writer.write(f"GET /netboot.cpio HTTP/1.1\r\nHost: bench\r\nRange: bytes={start_byte}-{end}\r\n\r\n"
                         .encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 206"), head[:80]
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            assert length == end - start_byte + 1
            left = length
            while left:
                data = await reader.read(min(left, 1 << 20))
                if not data:
                    raise ConnectionError("server closed the connection")
                left -= len(data)
            got += length
    finally:
        writer.close()
    return got


def plain_read(path: Path, total: int, chunk: int) -> float:
    """Seconds to read ``total`` bytes of ``path`` in ``chunk`` reads (page cache)."""
    size = path.stat().st_size
    t0 = time.perf_counter()
    done = 0
    with open(path, "rb", buffering=0) as f:
        while done < total:
            f.seek(done % size)
            data = f.read(min(chunk, total - done, size - done % size))
            done += len(data)
    return time.perf_counter() - t0


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def run(port: int, size: int, clients: int, chunk: int, seconds: float) -> tuple[int, float]:
    stop_at = time.monotonic() + seconds
    t0 = time.perf_counter()
    got = await asyncio.gather(*(client(port, size, chunk, stop_at) for _ in range(clients)))
    return sum(got), time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--layer-mib", type=int, default=160)
    ap.add_argument("--chunk-mib", type=float, default=4)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--iso", type=Path)
    args = ap.parse_args()
    chunk = int(args.chunk_mib * MiB)
    with tempfile.TemporaryDirectory(prefix="bench-netboot-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        iso = args.iso or make_iso(work, args.layer_mib)
        proc, port = start(iso, work)
        try:
            cpio = next(work.glob("ardoise-netboot-*/netboot.cpio"))
            size = cpio.stat().st_size
            idle_kib = vm_hwm_kib(proc.pid)
            total, secs = asyncio.run(run(port, size, args.clients, chunk, args.seconds))
            peak_kib = vm_hwm_kib(proc.pid)
            ref = plain_read(cpio, total, chunk)  # the same bytes, same file, no HTTP
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    rate = total / secs / MiB
    ref_rate = total / ref / MiB
    print(f"clients={args.clients} file={size / MiB:.0f} MiB chunk={args.chunk_mib:g} MiB "
          f"moved={total / MiB:.0f} MiB in {secs:.1f} s -> {rate:.0f} MiB/s aggregate "
          f"({rate / args.clients:.1f} MiB/s per client); plain file read {ref_rate:.0f} MiB/s; "
          f"ratio {rate / ref_rate:.3f}; server peak RSS {peak_kib / 1024:.0f} MiB "
          f"(after start {idle_kib / 1024:.0f} MiB); load avg {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
