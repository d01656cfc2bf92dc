"""The Secure Boot path's files, put in dnsmasq's TFTP tree (docs/netboot.md).

Debian 12's signed GRUB network image reads files by TFTP only: it has no HTTP client built
in, and Secure Boot forbids loading one. So the kernel, both initrds and GRUB's menu sit in
``<tftp root>/ardoise/``, where scripts/netboot-dnsmasq.sh's ``grub/grub.cfg`` sources the
menu from. Nothing there is secret: the per-boot token comes later, over HTTP, by MAC.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from server_stub.netboot import ipxe
from server_stub.netboot.service import Netboot


def export(nb: Netboot, root: Path, base_url: str) -> Path:
    dest = root / "ardoise"
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    sources = {"vmlinuz": nb.files.path("live/vmlinuz"), "initrd.img": nb.files.path("live/initrd.img"),
               "netboot.cpio": nb.cpio}
    for name, src in sources.items():
        # Copied, not linked: the work directory goes at exit; renamed into place so that a
        # laptop booting meanwhile never reads half a file. dnsmasq reads as its own user.
        tmp = dest / f".{name}.part"
        shutil.copyfile(src, tmp)
        tmp.chmod(0o644)
        os.replace(tmp, dest / name)
    menu = dest / "grub.cfg"
    menu.write_text(ipxe.grub_config(nb.files.version, base_url))
    menu.chmod(0o644)
    return dest
