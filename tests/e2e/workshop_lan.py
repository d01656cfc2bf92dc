"""A workshop's table in network namespaces that the test makes and removes.

``table``: the laptops' switch (a bridge with one tap per VM) and the workshop PC on it at
10.77.0.2, running dnsmasq in proxy-DHCP mode with its TFTP tree, both written by
scripts/netboot-dnsmasq.sh exactly as docs/netboot.md tells a workshop, the netboot
service and the collector. ``lan``: the workshop's router at 10.77.0.1 behind a veth, a
plain DHCP server giving addresses only (and next-server, as docs/netboot.md asks of the
LAN's DHCP server for Secure Boot laptops).

The test process itself stays in the host's namespace; it talks to the collector and the
service through one thread that has entered ``table`` (setns is per thread), so nothing of
the host's own network is touched.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from live_collector import Collector
from vm import Tap

REPO = Path(__file__).resolve().parents[2]
SUBNET, ROUTER, PC = "10.77.0.0", "10.77.0.1", "10.77.0.2"
CLONE_NEWNET = 0x40000000


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr.strip()}"


class WorkshopLan:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        tag = f"{os.getpid() % 100000}"
        self.table, self.lan = f"ardoise-table-{tag}", f"ardoise-lan-{tag}"
        self.tftp = workdir / "tftp"
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.taps: list[Tap] = []
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- the wires

    def up(self, macs: list[tuple[str, bool]]) -> list[Tap]:
        """The namespaces, the bridge, the veth to the router, one tap per (MAC, NIC ROM?)."""
        _ip("netns", "add", self.table)
        _ip("netns", "add", self.lan)
        t, lan = ("-n", self.table), ("-n", self.lan)
        _ip(*t, "link", "set", "lo", "up")
        # No STP, no forwarding delay: a port forwards as soon as the VM's NIC is up (PXE
        # firmware gives up on DHCP long before a 15 s learning delay ends).
        _ip(*t, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        _ip(*t, "addr", "add", f"{PC}/24", "dev", "br0")
        _ip(*t, "link", "set", "br0", "up")
        _ip(*t, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", self.lan)
        _ip(*t, "link", "set", "uplink", "master", "br0", "up")
        _ip(*lan, "addr", "add", f"{ROUTER}/24", "dev", "eth0")
        _ip(*lan, "link", "set", "eth0", "up")
        for i, (mac, rom) in enumerate(macs):
            name = f"tap{i}"
            _ip(*t, "tuntap", "add", "dev", name, "mode", "tap")
            _ip(*t, "link", "set", name, "master", "br0", "up")
            self.taps.append(Tap(self.table, name, mac, rom))
        return self.taps

    def unplug(self, tap: Tap) -> None:
        """The laptop's cable out of the switch: its frames go nowhere."""
        _ip("-n", self.table, "link", "set", tap.name, "down")

    def plug(self, tap: Tap) -> None:
        _ip("-n", self.table, "link", "set", tap.name, "up")

    # ---------------------------------------------------------------- the services

    def spawn(self, name: str, netns: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")
        proc = subprocess.Popen(["ip", "netns", "exec", netns, *argv], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def start_dhcp(self) -> None:
        """The LAN's own DHCP server: addresses, and the workshop PC as next-server."""
        self.spawn("lan-dhcp", self.lan, [
            "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null", "--port=0",
            "--user=root", "--interface=eth0", "--bind-interfaces", "--log-dhcp",
            f"--dhcp-range={ROUTER[:-1]}100,{ROUTER[:-1]}199,255.255.255.0,1h",
            f"--dhcp-leasefile={self.workdir / 'lan.leases'}",
            # next-server only (no file name): Debian 12's signed GRUB finds its TFTP server
            # by this alone; the firmware still boots what proxy-DHCP offers.
            f"--dhcp-boot=,,{PC}"])

    def start_proxy(self, port: int, uefi_ipxe: list[str]) -> Path:
        """scripts/netboot-dnsmasq.sh writes the config and the TFTP tree, as in the docs."""
        conf = self.workdir / "ardoise-netboot.conf"
        args = ["bash", str(REPO / "scripts" / "netboot-dnsmasq.sh"), "--interface", "br0", "--subnet", SUBNET,
                "--server", PC, "--port", str(port), "--tftp-root", str(self.tftp), "--conf", str(conf)]
        for mac in uefi_ipxe:
            args += ["--uefi-ipxe", mac]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "NETBOOT_DNSMASQ_NO_INSTALL": "1"})
        assert r.returncode == 0, r.stderr
        self.spawn("proxy-dhcp", self.table, ["dnsmasq", "--keep-in-foreground", "--log-facility=-",
                                              f"--conf-file={conf}", "--user=root"])
        return conf

    def call(self, fn, *args):
        """``fn(*args)`` in a thread that lives in the table's namespace (its sockets too)."""
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(1, initializer=_enter_netns,
                                                                 initargs=(self.table,))
        return self._thread.submit(fn, *args).result()

    def wait_http(self, url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call(lambda: urllib.request.urlopen(url, timeout=5).read())
                return
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"{url} did not answer"
                time.sleep(0.5)

    def down(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._thread is not None:
            self._thread.shutdown()
        for ns in (self.table, self.lan):
            # Removing a namespace removes its bridge, taps and veth end with it.
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


class TableCollector(Collector):
    """The collector on the workshop PC, inside the table's namespace."""

    def __init__(self, workdir: Path, lan: WorkshopLan, port: int = 8080):
        super().__init__(workdir)
        self.lan = lan
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{PC}:{self.port}"

    guest_url = url

    def start(self) -> "TableCollector":
        self._cli("migrate")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.lan.table, sys.executable, "-m", "server_stub.cli", "serve",
                 "--host", PC, "--port", str(self.port), "--db", self.db],
                stdout=log, stderr=subprocess.STDOUT)
        self.lan.wait_http(self.url + "/healthz", self.proc, self.log, timeout=60)
        return self

    def get(self, path: str) -> dict:
        return self.lan.call(super().get, path)

    def verify(self, envelope) -> dict:
        return self.lan.call(super().verify, envelope)
