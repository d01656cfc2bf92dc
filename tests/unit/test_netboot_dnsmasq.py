"""scripts/netboot-dnsmasq.sh writes a proxy-DHCP dnsmasq config and the TFTP stubs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netboot-dnsmasq.sh"
LOADERS = ("usr/lib/ipxe/undionly.kpxe", "usr/lib/ipxe/snponly.efi", "usr/lib/shim/shimx64.efi.signed",
           "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NETBOOT_DNSMASQ_NO_INSTALL": "1", "NETBOOT_DNSMASQ_LIB": str(tmp / "lib")}
    return subprocess.run(["bash", str(SCRIPT), "--tftp-root", str(tmp / "tftp"), "--conf", str(tmp / "a.conf"),
                           *args], capture_output=True, text=True, env=env, timeout=30)


def test_writes_proxy_dhcp_config_and_stubs(tmp_path):
    for rel in LOADERS:
        (tmp_path / "lib" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lib" / rel).write_bytes(rel.encode())
    r = run(tmp_path, "--interface", "eth1", "--subnet", "192.168.1.0", "--server", "192.168.1.5", "--port", "8070",
            "--uefi-ipxe", "3c:52:82:0a:11:05")
    assert r.returncode == 0, r.stderr
    conf = (tmp_path / "a.conf").read_text()
    for line in ("port=0", "interface=eth1", "dhcp-range=192.168.1.0,proxy", "dhcp-match=set:ipxe,175",
                 "dhcp-boot=tag:ipxe,ardoise.ipxe,,192.168.1.5",
                 'pxe-service=tag:!ipxe,x86PC,"Ardoise (BIOS)",undionly.kpxe',
                 "dhcp-mac=set:uefi-ipxe,3c:52:82:0a:11:05", f"tftp-root={tmp_path / 'tftp'}"):
        assert line in conf.splitlines(), line
    # The tagged MACs' iPXE line comes before shim's: dnsmasq boots the first that matches.
    lines = conf.splitlines()
    assert lines.index('pxe-service=tag:!ipxe,tag:uefi-ipxe,X86-64_EFI,"Ardoise (UEFI, iPXE)",snponly.efi') < \
        lines.index('pxe-service=tag:!ipxe,X86-64_EFI,"Ardoise (UEFI)",shimx64.efi')
    tftp = tmp_path / "tftp"
    assert (tftp / "ardoise.ipxe").read_text() == "#!ipxe\nchain http://192.168.1.5:8070/boot.ipxe\n"
    # Signed GRUB reads grub/grub.cfg beside itself by TFTP; the service writes the menu it sources.
    assert "source /ardoise/grub.cfg" in (tftp / "grub/grub.cfg").read_text().splitlines()
    assert (tftp / "grubx64.efi").read_bytes() == LOADERS[3].encode()


def test_bad_arguments_are_one_line(tmp_path):
    for args, word in ((["--interface", "eth0", "--subnet", "192.168.1.0"], "are required"),
                       (["--interface", "eth0", "--subnet", "lan", "--server", "192.168.1.5"], "not an IPv4"),
                       (["--interface", "eth0", "--subnet", "10.0.0.0", "--server", "10.0.0.1", "--port", "x"],
                        "not a port"),
                       (["--interface", "eth0", "--subnet", "10.0.0.0", "--server", "10.0.0.1", "--uefi-ipxe", "x"],
                        "not a MAC"),
                       (["--bogus"], "unknown option")):
        r = run(tmp_path, *args)
        assert r.returncode == 2 and word in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "a.conf").exists()
