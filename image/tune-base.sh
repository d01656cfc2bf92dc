#!/bin/sh
# Runs inside the chroot of the base (build_image.sh, stage 2): trims the Debian install
# to what a live disk-sanitizing station needs, then builds the initramfs. The base cache
# is keyed by this file, so edits here rebuild the base from the cached package stage.
set -eu

KVER=$(ls /lib/modules | sort -V | tail -n1)
MODS=/lib/modules/$KVER/kernel

# --- identity and services -------------------------------------------------------------
echo ardoise > /etc/hostname
printf '127.0.0.1\tlocalhost\n127.0.1.1\tardoise\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > /etc/hosts
: > /etc/machine-id                      # systemd makes a fresh one at every boot
rm -f /var/lib/dbus/machine-id
systemctl enable systemd-networkd.service systemd-resolved.service
ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
# Nothing may touch the disks behind the agent's back, nor spend boot time on upkeep.
for unit in smartmontools.service smartd.service e2scrub_all.timer e2scrub_reap.service \
            fstrim.timer apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
            systemd-networkd-wait-online.service serial-getty@ttyS0.service \
            systemd-timesyncd.service nvmf-autoconnect.service nvmefc-boot-connections.service \
            systemd-binfmt.service proc-sys-fs-binfmt_misc.automount; do
  systemctl mask "$unit" >/dev/null 2>&1 || true
done
cat > /etc/issue <<'EOF'
Ardoise live system: technician's root shell. The agent runs on tty1 (Alt+F1).
  journalctl -u ardoise-agent -f    follow the agent
  ls /media/ardoise                 the stick's data partition (config, spool, logs)

EOF

# --- kernel modules: keep storage, USB, network, GPU/console, file systems we mount ----
# Debian's 6.12 ships its modules xz-compressed one by one (.ko.xz). They are stored
# decompressed: the xz squashfs then weighs the same (drivers/gpu: 9.67 against 9.63 MB,
# BENCHMARKS.md), the squashfs's in-kernel decompressor does the work kmod would do in user
# space at each load, and the initramfs's zstd sees plain code. The module signature is
# inside the compressed file, so it is kept (Secure Boot's lockdown checks it).
python3 - "$KVER" <<'EOF'
import lzma, os, sys
from pathlib import Path

n = 0
for ko in Path("/lib/modules", sys.argv[1]).rglob("*.ko.xz"):
    out = ko.with_suffix("")
    out.write_bytes(lzma.decompress(ko.read_bytes()))
    os.chmod(out, 0o644)
    ko.unlink()
    n += 1
print(f"tune-base: {n} modules decompressed")
EOF
prune_modules() {
  for p in sound drivers/media drivers/infiniband drivers/isdn drivers/staging drivers/iio \
           drivers/bluetooth net/bluetooth drivers/net/can net/can drivers/net/wan \
           drivers/net/hamradio drivers/net/ieee802154 net/ieee802154 net/mac802154 \
           drivers/target drivers/nfc net/nfc arch/x86/kvm drivers/atm net/atm drivers/mtd \
           drivers/w1 drivers/edac drivers/usb/gadget drivers/usb/serial drivers/input/joystick \
           drivers/input/tablet drivers/input/touchscreen drivers/gnss drivers/comedi \
           drivers/fpga drivers/counter drivers/most drivers/greybus \
           net/netfilter net/ipv4/netfilter net/ipv6/netfilter net/bridge net/openvswitch \
           net/sctp net/rds net/tipc net/ceph net/sunrpc net/batman-adv net/l2tp net/rxrpc \
           net/6lowpan net/9p net/ax25 net/rose net/netrom net/x25 net/appletalk net/smc \
           net/dccp \
           drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/qla4xxx drivers/scsi/bfa \
           drivers/scsi/csiostor drivers/scsi/be2iscsi drivers/scsi/bnx2fc drivers/scsi/qedf \
           drivers/scsi/qedi drivers/scsi/fnic drivers/scsi/cxgbi drivers/net/ethernet/mellanox \
           drivers/net/ethernet/qlogic drivers/net/ethernet/chelsio drivers/net/ethernet/netronome \
           drivers/net/ethernet/cavium drivers/net/ethernet/huawei drivers/net/ethernet/pensando \
           drivers/net/ethernet/fungible drivers/net/ethernet/sfc \
           fs/ocfs2 fs/gfs2 fs/xfs fs/btrfs fs/ceph fs/cifs fs/smb fs/nfs fs/nfsd fs/nfs_common \
           fs/lockd fs/jfs fs/reiserfs fs/ubifs fs/f2fs fs/nilfs2 fs/orangefs fs/afs fs/coda \
           fs/dlm fs/9p fs/ntfs3 fs/ntfs fs/erofs fs/hfs fs/hfsplus fs/minix fs/romfs \
           fs/ufs fs/qnx4 fs/qnx6 fs/omfs fs/befs fs/sysv fs/adfs fs/affs fs/efs fs/bfs \
           fs/freevxfs fs/hpfs fs/zonefs fs/gfs2 fs/cachefiles fs/fscache fs/netfs \
           fs/bcachefs drivers/accel drivers/crypto/intel/qat drivers/crypto/hisilicon \
           drivers/crypto/cavium drivers/crypto/chelsio drivers/crypto/marvell \
           drivers/vdpa drivers/vhost drivers/vfio drivers/nvme/target drivers/net/dsa \
           drivers/net/ethernet/intel/ice drivers/net/ethernet/intel/i40e \
           drivers/net/ethernet/intel/iavf drivers/net/ethernet/intel/idpf \
           drivers/net/ethernet/intel/ixgbe drivers/net/ethernet/intel/ixgbevf \
           drivers/net/ethernet/intel/fm10k drivers/net/ethernet/broadcom/bnxt \
           drivers/net/ethernet/marvell/octeontx2 drivers/net/ethernet/marvell/prestera \
           drivers/net/ethernet/amazon drivers/net/ethernet/google drivers/net/ethernet/microsoft \
           drivers/net/ethernet/emulex drivers/net/ethernet/brocade drivers/net/ethernet/cisco \
           drivers/net/ethernet/wangxun drivers/net/ethernet/amd/pds_core \
           drivers/gpu/drm/vmwgfx net/sched drivers/scsi/fcoe drivers/scsi/libfc \
           drivers/scsi/snic drivers/scsi/bnx2i drivers/scsi/scsi_debug.ko; do
    rm -rf "${MODS:?}/$p"
  done
  # The kernel's self-tests (test_bpf alone is 4.9 MB).
  rm -f "$MODS"/lib/test_*.ko
  depmod -a "$KVER"
}
prune_modules

# --- firmware: common NICs, Wi-Fi, GPUs; drop what no laptop or desktop NIC uses --------
# Kept: wired NICs, laptop Wi-Fi (Intel, Atheros/Qualcomm, Realtek, MediaTek, Broadcom),
# GPUs (Intel i915 and Xe, AMD). Dropped: router and phone SoCs, data-centre GPUs and
# NICs, Bluetooth (its modules are pruned above), and amdgpu's copies for Southern and Sea
# Islands GPUs (the radeon driver, the default for those, has its own). Also dropped to fit
# kernel 6.12 in 250 MB, because a text console needs none of them (the firmware's frame
# buffer, efifb or VGA text, shows the agent): desktop-only AMD GPUs (Navi 21 and 31, Vega
# 10, Fiji, Tonga, Polaris 10), Intel's HuC (media encoding only) and nouveau's firmware
# (acceleration only). See docs/image.md.
for p in netronome mellanox liquidio qed cxgb4 dpaa2 mrvl/prestera qcom ti-connectivity \
         cavium ueagle-atm vxge cypress qca rtl_bt \
         ath11k/IPQ6018 ath11k/IPQ8074 ath11k/QCN9074 ath11k/WCN6750 \
         ath10k/QCA4019 ath10k/WCN3990 ath10k/QCA9888 ath10k/QCA99X0 ath10k/QCA9984 \
         mediatek/mt81* mediatek/mt7915* mediatek/mt7986* mediatek/BT_RAM_CODE* \
         amdgpu/aldebaran_* amdgpu/arcturus_* amdgpu/cyan_skillfish* amdgpu/navi12_* \
         amdgpu/vega20_* nvidia/tegra* intel/ibt-* brcm/*.hcd \
         amdgpu/tahiti_* amdgpu/pitcairn_* amdgpu/verde_* amdgpu/oland_* amdgpu/hainan_* \
         amdgpu/bonaire_* amdgpu/hawaii_* amdgpu/kaveri_* amdgpu/kabini_* amdgpu/mullins_* \
         amdgpu/sienna_cichlid_* amdgpu/gc_11_0_0_* amdgpu/vega10_* amdgpu/fiji_* \
         amdgpu/tonga_* amdgpu/polaris10_* i915/*_huc* nvidia; do
  # Unquoted on purpose: the entries are globs.
  rm -rf /lib/firmware/$p
done
# iwlwifi ships every API version of each microcode; the kernel loads the highest it
# supports (the name modinfo declares) or the next lower one present. Keep just that one.
python3 - "$KVER" <<'EOF'
import re, subprocess, sys
from pathlib import Path

kver = sys.argv[1]
fw = Path("/lib/firmware")
declared = subprocess.run(["modinfo", "-k", kver, "-F", "firmware", "iwlwifi"],
                          capture_output=True, text=True).stdout.split()
want = {}
for name in declared:
    m = re.fullmatch(r"(iwlwifi-.+)-(\d+)\.ucode", name)
    if m:
        want[m.group(1)] = max(int(m.group(2)), want.get(m.group(1), 0))
keep = set()
for prefix, top in want.items():
    versions = []
    for f in fw.glob(prefix + "-*.ucode"):
        m = re.fullmatch(re.escape(prefix) + r"-(\d+)\.ucode", f.name)
        if m and int(m.group(1)) <= top:
            versions.append((int(m.group(1)), f))
    if versions:
        keep.add(max(versions)[1])
removed = 0
for f in fw.glob("iwlwifi-*.ucode"):
    m = re.fullmatch(r"(iwlwifi-.+)-(\d+)\.ucode", f.name)
    if m and m.group(1) in want and f not in keep:
        removed += f.stat().st_size
        f.unlink()
print(f"tune-base: iwlwifi firmware pruned by {removed // 1024} KiB, kept {len(keep)} files")
EOF

# --- docs, man pages, locales, apt lists and caches -------------------------------------
rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/lintian \
       /usr/share/linda /usr/share/bug /var/cache/man
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# Babel's CLDR data for 800 locales is 31 MB: keep the languages the agent has catalogs for
# (en, fr) and the next ones a workshop would add (de, es), with root, their parent.
find /usr/share/python-babel-localedata/locale-data -name '*.dat' \
  ! -name 'root.dat' ! -name 'en.dat' ! -name 'en_001.dat' ! -name 'en_150.dat' ! -name 'en_GB.dat' \
  ! -name 'en_US*.dat' ! -name 'fr*.dat' ! -name 'de*.dat' ! -name 'es.dat' ! -name 'es_ES.dat' -delete
# console-data: tty2 needs `loadkeys fr` (i386/azerty + includes), no console font or other
# machine's keymaps.
rm -rf /usr/share/consolefonts /usr/share/consoletrans /usr/share/keymaps/amiga \
       /usr/share/keymaps/atari /usr/share/keymaps/mac /usr/share/keymaps/sun
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
       /var/lib/dpkg/*-old /tmp/* /var/tmp/*
find /var/log -type f -exec truncate -s 0 {} +
# Tests and C headers inside Python packages are never run on the stick.
find /usr/lib/python3/dist-packages -depth -type d -name tests -exec rm -rf {} + 2>/dev/null || true

# --- initramfs, after the module pruning so it only carries what the system keeps -------
update-initramfs -c -k "$KVER" 2>/dev/null || update-initramfs -u -k "$KVER"
