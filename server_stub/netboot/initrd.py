"""The netboot addition to the image's initramfs: both squashfs layers and a live-boot hook.

live-boot's own network fetch (``fetch=URL``) takes one squashfs and needs the NIC's
driver and DHCP inside the initramfs, which the image strips (image/initramfs-hooks). So
the layers travel another way: iPXE (or GRUB) downloads this second initrd, a plain
``newc`` cpio archive, and the kernel unpacks it over the image's initramfs. It holds

* ``ardoise-live/live/*.squashfs``: the two layers, unpacked into RAM by the kernel;
* ``lib/live/boot/9995-ardoise-netboot.sh``: sourced by live-boot after its own scripts,
  it checks the machine's RAM (a clear message on screen, then power off) and points
  live-boot's medium at ``/ardoise-live``, so live-boot stacks the layers in name order as
  it does from a stick.

So the boot needs no Linux driver for the NIC (iPXE's or the firmware's does the
download) and no change to the image. The cpio format is a few fixed-width hex fields:
written here rather than by a ``cpio`` process so the archive streams from the extracted
layers in bounded memory.
"""

from __future__ import annotations

import math
from pathlib import Path

from server_stub.netboot.image import BootFiles

# What a running image needs beyond its layers (kernel, udev, Python, the agent, the
# overlay's writes and the certificates held in RAM); see docs/netboot.md.
WORKING_RAM_MIB = 640
HOOK_PATH = "lib/live/boot/9995-ardoise-netboot.sh"
LIVE_DIR = "ardoise-live"
COPY_CHUNK = 1 << 20

HOOK = r"""#!/bin/sh
# Ardoise netboot (written by ardoise-collector netboot, sourced by live-boot): the layers
# came inside the initramfs, under /ardoise-live/live, instead of on a stick.
# (The ARDOISE_NB_* variables exist for the unit test; nothing sets them at boot.)
ardoise_live="${ARDOISE_NB_LIVE:-/ardoise-live}"
if [ -d "$ardoise_live/live" ]; then
ardoise_netboot_ram_check ()
{
	need=@NEED_MIB@
	have=0
	while read -r key value _unit; do
		[ "$key" = "MemTotal:" ] && have=$((value / 1024))
	done < "${ARDOISE_NB_MEMINFO:-/proc/meminfo}"
	[ "$have" -ge "$need" ] && return 0
	for out in ${ARDOISE_NB_CONSOLES:-/dev/console /dev/tty1 /dev/ttyS0}; do
		{
			echo
			echo "ARDOISE: MEMOIRE INSUFFISANTE / NOT ENOUGH RAM"
			echo "Ce poste a ${have} Mio de RAM ; le demarrage reseau en demande ${need}."
			echo "This machine has ${have} MiB of RAM; the network boot needs ${need} MiB."
			echo "Ajoutez de la RAM ou demarrez-le sur une cle Ardoise. Arret dans 20 s."
			echo "ardoise-netboot: refused: ${have} MiB RAM < ${need} MiB"
		} > "$out" 2>/dev/null
	done
	sleep 20
	poweroff -f 2>/dev/null
	echo o > "${ARDOISE_NB_SYSRQ:-/proc/sysrq-trigger}"
	sleep 60
}

find_livefs ()
{
	ardoise_netboot_ram_check
	medium="${mountpoint:-/run/live/medium}"
	mkdir -p "$medium"
	if ! grep -q " $medium " /proc/mounts; then
		mount --bind "$ardoise_live" "$medium" || return 1
	fi
	echo "$medium"
}
fi
"""


def required_ram_mib(files: BootFiles) -> int:
    """RAM (as the kernel counts it, MemTotal) a machine needs to boot from the network:
    the layers unpacked in RAM plus the running image's working set, rounded up to 64 MiB."""
    layers = sum(files.sizes[n] for n in files.layers) / (1 << 20)
    return int(math.ceil((layers + WORKING_RAM_MIB) / 64) * 64)


def _header(name: str, mode: int, size: int, ino: int) -> bytes:
    encoded = name.encode("ascii") + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(encoded), 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
    return head + b"\0" * (-len(head) % 4)


def write_cpio(files: BootFiles, out: Path) -> Path:
    """Write the netboot initrd addition (see the module's docstring) to ``out``."""
    hook = HOOK.replace("@NEED_MIB@", str(required_ram_mib(files))).encode("ascii")
    ino = 1
    with open(out, "wb") as dst:
        for d in (LIVE_DIR, f"{LIVE_DIR}/live"):
            dst.write(_header(d, 0o040755, 0, ino))
            ino += 1
        for name in files.layers:
            size = files.sizes[name]
            dst.write(_header(f"{LIVE_DIR}/{name}", 0o100644, size, ino))
            ino += 1
            with open(files.path(name), "rb") as src:
                while chunk := src.read(COPY_CHUNK):
                    dst.write(chunk)
            dst.write(b"\0" * (-size % 4))
        dst.write(_header(HOOK_PATH, 0o100755, len(hook), ino))
        dst.write(hook + b"\0" * (-len(hook) % 4))
        dst.write(_header("TRAILER!!!", 0, 0, 0))
    return out
