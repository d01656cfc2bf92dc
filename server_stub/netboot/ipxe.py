"""The iPXE scripts of a network boot (docs/netboot.md).

``/boot.ipxe`` is the same for every machine: it chains to a per-machine script named by
the NIC's MAC (iPXE's ``${netX/mac:hexhyp}``), which the service writes at that request
with a fresh one-time enrollment token and the machine's seat. URLs in the first script
are relative, so it works whatever address the laptops reach the service at.
"""

from __future__ import annotations

from dataclasses import dataclass

# The stick's kernel line (build_image.sh grub_cfg), plus the netboot initrds' names (the
# EFI stub of older kernels finds iPXE's initrds by them; BIOS boots ignore the words).
KERNEL_ARGS = ("boot=live components quiet loglevel=3 systemd.show_status=auto console=tty1 "
               "console=ttyS0,115200n8 fsck.mode=skip")


def first_script(version: str) -> str:
    return (
        "#!ipxe\n"
        f"echo Ardoise {version}: network boot\n"
        # memsize is empty where iPXE lacks its memory-map settings: the initramfs checks then.
        "chain --autofree boot/${netX/mac:hexhyp}.ipxe?mem=${memsize} || goto failed\n"
        ":failed\n"
        "echo Ardoise: the boot service did not answer. Retrying in 10 s.\n"
        "sleep 10\n"
        "chain --autofree boot.ipxe\n"
    )


@dataclass(frozen=True)
class MachineBoot:
    base_url: str  # http://host:port, as the machine reached us
    version: str
    mac: str
    seat: str | None
    token: str


def _kernel_words(b: MachineBoot) -> list[str]:
    words = [KERNEL_ARGS, "initrd=initrd.img", "initrd=netboot.cpio",
             f"ardoise-netboot={b.base_url}", f"ardoise.collector.token={b.token}",
             "ardoise.hold_until_delivered"]
    if b.seat:
        words.append(f"ardoise.seat={b.seat}")
    return words


def _label(b: MachineBoot) -> str:
    return f"seat {b.seat}" if b.seat else f"MAC {b.mac}"


def machine_script(b: MachineBoot) -> str:
    words, label = _kernel_words(b), _label(b)
    return (
        "#!ipxe\n"
        f"echo Ardoise {b.version}, {label}: loading the image into RAM\n"
        f"kernel {b.base_url}/live/vmlinuz {' '.join(words)}\n"
        f"initrd {b.base_url}/live/initrd.img\n"
        f"initrd {b.base_url}/netboot.cpio\n"
        "boot\n"
    )


def refuse_ram_script(have_mib: int, need_mib: int) -> str:
    """Shown by iPXE before anything is downloaded, on a machine with too little RAM."""
    return (
        "#!ipxe\n"
        "echo ARDOISE: MEMOIRE INSUFFISANTE / NOT ENOUGH RAM\n"
        f"echo Ce poste a {have_mib} Mio de RAM ; le demarrage reseau en demande {need_mib}.\n"
        f"echo This machine has {have_mib} MiB of RAM; the network boot needs {need_mib} MiB.\n"
        "echo Ajoutez de la RAM ou demarrez-le sur une cle Ardoise. Arret dans 20 s.\n"
        "sleep 20\n"
        "poweroff || exit 1\n"
    )


def boot_words(b: MachineBoot) -> str:
    """This boot's token and seat, asked for by the booted system itself when its loader
    could not ask (Secure Boot: Debian's signed GRUB reads only TFTP; docs/netboot.md)."""
    words = [f"ardoise.collector.token={b.token}"]
    if b.seat:
        words.append(f"ardoise.seat={b.seat}")
    return " ".join(words) + "\n"


def grub_config(version: str, base_url: str) -> str:
    """The Secure Boot path's GRUB menu, served by TFTP beside the files it loads: Debian 12's
    signed GRUB network image has no HTTP client (its modules are built in, and Secure Boot
    forbids loading more), so the kernel and both initrds come over TFTP. A static file
    cannot carry a per-boot token: the agent session asks the service for it by the MAC
    (``/boot/<MAC>.words``) once Linux has the network."""
    words = [KERNEL_ARGS, f"ardoise-netboot={base_url}", "ardoise.hold_until_delivered"]
    return (
        "set timeout=0\n"
        f'menuentry "Ardoise {version}, network boot (Secure Boot)" {{\n'
        f"  linux /ardoise/vmlinuz {' '.join(words)}\n"
        "  initrd /ardoise/initrd.img /ardoise/netboot.cpio\n"
        "}\n"
    )
