#!/usr/bin/env bash
# Builds the Ardoise live USB image: dist/ardoise-<version>-amd64.iso (hybrid BIOS/UEFI,
# Secure Boot through Debian's signed shim, GRUB and kernel) plus its manifest.
#
# Run as root on Debian 12. Layout of the image (see docs/image.md):
#   live/10-base.squashfs     Debian bookworm minbase + packages (image/packages.list),
#                             cached outside the repo, keyed by the package list
#   live/20-ardoise.squashfs  the agent from this checkout + image/rootfs (rebuilt each time)
#   live/vmlinuz, initrd.img  Debian's signed kernel and a live-boot initramfs
#   partition 2               the EFI system partition (shim, signed GRUB)
#   partition 3               FAT "ARDOISE": ardoise.yaml, station key, spool, logs
#
# Usage: build_image.sh [--base-only] [--out DIR]
#   ARDOISE_CACHE  cache directory (default /var/cache/ardoise-image)
#   ARDOISE_WORK   scratch directory (default /var/tmp/ardoise-image)
#   ARDOISE_MIRROR Debian mirror (default http://deb.debian.org/debian)
#   ARDOISE_BASE_DIR  use this already built base stage as is (debugging the boot chain)
set -euo pipefail
# The whole script is one block, parsed before it runs: editing this file during a build
# (a long one) cannot derail the running build.
{
REPO=$(cd "$(dirname "$0")" && pwd)
CACHE=${ARDOISE_CACHE:-/var/cache/ardoise-image}
WORK=${ARDOISE_WORK:-/var/tmp/ardoise-image}
MIRROR=${ARDOISE_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
OUT=$REPO/dist
BASE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --base-only) BASE_ONLY=1 ;;
    --packages-only) BASE_ONLY=2 ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build_image: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[build_image %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'build_image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, mounts)"

# One build at a time: concurrent builds would share the cache and scratch directories.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE/.lock; waiting"
  flock 9
fi

# --- host tools -------------------------------------------------------------------------
HOST_PACKAGES=(debootstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin grub-efi-ia32-bin
               grub-common mtools dosfstools zstd sbsigntool python3 python3-venv python3-pip)
ensure_host_tools() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing host tools: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
      || die "cannot install host tools: ${missing[*]} (install them with apt-get)"
  fi
}

# --- chroot helpers ---------------------------------------------------------------------
MOUNTED=()
chroot_mount() {
  local root=$1 d
  for d in proc sys dev dev/pts; do
    mkdir -p "$root/$d"
  done
  mount -t proc proc "$root/proc" && MOUNTED+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && MOUNTED+=("$root/sys")
  mount --bind /dev "$root/dev" && MOUNTED+=("$root/dev")
  mount -t devpts devpts "$root/dev/pts" && MOUNTED+=("$root/dev/pts")
}
chroot_umount() {
  local i
  for ((i=${#MOUNTED[@]}-1; i>=0; i--)); do
    umount -l "${MOUNTED[$i]}" 2>/dev/null || true
  done
  MOUNTED=()
}
trap chroot_umount EXIT
in_chroot() {
  local root=$1; shift
  LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$root" "$@"
}

# --- stage 1: debootstrap + packages (cached, keyed by the package list) -----------------
package_list() { grep -v '^\s*#' "$REPO/image/packages.list" | awk 'NF{print $1}'; }
PKG_KEY=$( { echo "$SUITE $MIRROR"; package_list; } | sha256sum | cut -c1-16)
PKG_DIR=$CACHE/packages-$PKG_KEY

build_packages_stage() {
  if [ -f "$PKG_DIR/.complete" ]; then
    log "package stage cached: $PKG_DIR"
    return
  fi
  local tmp=$CACHE/packages-$PKG_KEY.tmp
  rm -rf "$tmp"; mkdir -p "$CACHE"
  log "debootstrap $SUITE minbase from $MIRROR"
  debootstrap --variant=minbase --components=main,non-free-firmware "$SUITE" "$tmp" "$MIRROR" >&2
  cat > "$tmp/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main non-free-firmware
deb $MIRROR $SUITE-updates main non-free-firmware
deb http://deb.debian.org/debian-security $SUITE-security main non-free-firmware
EOF
  # No daemon may start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
  # The initramfs is built once, in the tuning stage, after modules are pruned.
  mkdir -p "$tmp/etc/initramfs-tools/conf.d"
  cp "$REPO/image/initramfs.conf" "$tmp/etc/initramfs-tools/conf.d/ardoise.conf"
  chroot_mount "$tmp"
  in_chroot "$tmp" apt-get update -q >&2
  # shellcheck disable=SC2046
  in_chroot "$tmp" apt-get install -y -q --no-install-recommends $(package_list) >&2
  in_chroot "$tmp" apt-get clean
  chroot_umount
  rm -f "$tmp/usr/sbin/policy-rc.d"
  touch "$tmp/.complete"
  rm -rf "$PKG_DIR"; mv "$tmp" "$PKG_DIR"
  log "package stage done: $(du -sh "$PKG_DIR" | cut -f1)"
}

# --- stage 2: tuned base squashfs (cached, keyed by packages + tuning script) ------------
BASE_KEY=$( { echo "$PKG_KEY"; cat "$REPO/image/tune-base.sh" "$REPO/image/initramfs.conf" \
                "$REPO/image/initramfs-modules" "$REPO"/image/initramfs-hooks/* \
                "$REPO/image/firmware-backports.list"; } \
            | sha256sum | cut -c1-16)
BASE=${ARDOISE_BASE_DIR:-$CACHE/base-$BASE_KEY}   # override: reuse a given base (debugging)

# A few firmware files from bookworm-backports (image/firmware-backports.list): files that
# kernel 6.12's drivers request for current laptops and bookworm's firmware lacks. Taken
# file by file, not whole packages: backports' firmware packages weigh ~100 MB more
# installed, the ISO has 250 MB. Nothing else comes from backports.
add_backports_firmware() {
  local root=$1 out=$2 pkgs
  pkgs=$(grep -v '^\s*#' "$REPO/image/firmware-backports.list" | awk 'NF{print $1}' | sort -u)
  [ -n "$pkgs" ] || return 0
  echo "deb $MIRROR $SUITE-backports non-free-firmware" > "$root/etc/apt/sources.list.d/backports.list"
  # The base's resolv.conf points at systemd-resolved, which does not run in the chroot
  # (tune-base.sh sets that link again).
  cp --remove-destination /etc/resolv.conf "$root/etc/resolv.conf"
  in_chroot "$root" apt-get update -q >&2
  rm -rf "$root/tmp/bpo"; mkdir -p "$root/tmp/bpo/x"
  local p f
  for p in $pkgs; do
    in_chroot "$root" sh -c "cd /tmp/bpo && apt-get download -q $p/$SUITE-backports" >&2 \
      || die "cannot download $p from $SUITE-backports"
  done
  : > "$out"
  for p in "$root"/tmp/bpo/*.deb; do
    dpkg-deb -x "$p" "$root/tmp/bpo/x"
    printf '%s\t%s\n' "$(dpkg-deb -f "$p" Package)" "$(dpkg-deb -f "$p" Version)" >> "$out.pkgs"
  done
  grep -v '^\s*#' "$REPO/image/firmware-backports.list" | awk 'NF{print $1, $2}' | while read -r p f; do
    [ -f "$root/tmp/bpo/x/lib/firmware/$f" ] || die "$f is not in $p ($SUITE-backports)"
    install -D -m 0644 "$root/tmp/bpo/x/lib/firmware/$f" "$root/lib/firmware/$f"
    printf '%s\t%s\t%s\n' "$p" "$(awk -F'\t' -v p="$p" '$1 == p {print $2}' "$out.pkgs")" "$f" >> "$out"
  done
  rm -rf "$root/tmp/bpo" "$out.pkgs" "$root/etc/apt/sources.list.d/backports.list"
  log "firmware from $SUITE-backports: $(wc -l < "$out") files"
}

build_base_stage() {
  if [ -f "$BASE/.complete" ]; then
    log "base stage cached: $BASE"
    return
  fi
  local tmp=$BASE.tmp root
  rm -rf "$tmp"; mkdir -p "$tmp"
  root=$tmp/rootfs
  log "copying package stage"
  cp -a "$PKG_DIR" "$root"
  rm -f "$root/.complete"
  cp "$REPO/image/initramfs.conf" "$root/etc/initramfs-tools/conf.d/ardoise.conf"
  cp "$REPO/image/initramfs-modules" "$root/etc/initramfs-tools/modules"
  install -m 0755 "$REPO"/image/initramfs-hooks/* "$root/etc/initramfs-tools/hooks/"
  chroot_mount "$root"
  add_backports_firmware "$root" "$tmp/firmware-backports.tsv"
  install -m 0755 "$REPO/image/tune-base.sh" "$root/tmp/tune-base.sh"
  in_chroot "$root" /bin/sh /tmp/tune-base.sh >&2
  rm -f "$root/tmp/tune-base.sh"
  chroot_umount
  # Kernel and initramfs live outside the squashfs, on the ISO.
  cp "$root"/boot/vmlinuz-* "$tmp/vmlinuz"
  cp "$root"/boot/initrd.img-* "$tmp/initrd.img"
  rm -f "$root"/boot/initrd.img-*
  in_chroot "$root" dpkg-query -W -f='${Package}\t${Version}\t${Installed-Size}\n' > "$tmp/packages.tsv"
  cp "$root/etc/debian_version" "$tmp/debian_version"
  basename "$(ls "$root"/lib/modules)" > "$tmp/kernel-version"
  log "squashing base ($(du -sh "$root" | cut -f1))"
  # BCJ: the x86 branch filter makes xz compress binaries and kernel modules ~10% better.
  mksquashfs "$root" "$tmp/10-base.squashfs" -comp xz -Xbcj x86 -b 1M -noappend -quiet \
    -e boot >&2
  rm -rf "$root"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$tmp/built-at"
  touch "$tmp/.complete"
  rm -rf "$BASE"; mv "$tmp" "$BASE"
  log "base stage done: $(du -h "$BASE/10-base.squashfs" | cut -f1)"
}

ensure_host_tools
if [ -z "${ARDOISE_BASE_DIR:-}" ]; then
  build_packages_stage
  [ "$BASE_ONLY" -eq 2 ] && { log "packages ready: $PKG_DIR"; exit 0; }
  build_base_stage
fi
[ "$BASE_ONLY" -eq 1 ] && { log "base ready: $BASE"; exit 0; }

# --- stage 3: the agent layer (rebuilt every time; seconds) ------------------------------
FPDF2_VERSION=2.8.9      # not packaged in bookworm; pure Python, runs on Debian's Pillow
FONTTOOLS_VERSION=4.38.0 # bookworm's version, as a wheel: python3-fonttools pulls scipy & gcc
WHEELS=$CACHE/wheels
PYVER=3.11            # bookworm's python3
SITE=usr/local/lib/python$PYVER/dist-packages
VERSION=$(cd "$REPO" && python3 -c 'import agent; print(agent.__version__)')
LAYER=$WORK/layer
ISO_TREE=$WORK/iso

build_agent_layer() {
  rm -rf "$LAYER"; mkdir -p "$LAYER" "$WHEELS"
  cp -a "$REPO/image/rootfs/." "$LAYER/"
  # A throwaway venv only to run pip: Debian's system pip refuses to install (PEP 668).
  if [ ! -x "$WORK/pip-venv/bin/pip" ]; then
    python3 -m venv "$WORK/pip-venv" >&2
  fi
  local pip="$WORK/pip-venv/bin/python -m pip --disable-pip-version-check -q"
  local w
  for w in fpdf2==$FPDF2_VERSION fonttools==$FONTTOOLS_VERSION; do
    if ! ls "$WHEELS/${w%%==*}-${w##*==}-"*.whl >/dev/null 2>&1; then
      log "downloading $w from PyPI"
      $pip download --no-deps --only-binary=:all: -d "$WHEELS" "$w" >&2
    fi
  done
  # The agent's dependencies come from Debian's python3-* packages of the base: --no-deps.
  $pip install --no-deps --no-compile --target "$LAYER/$SITE" \
    "$WHEELS"/fpdf2-"$FPDF2_VERSION"-*.whl "$WHEELS"/fonttools-"$FONTTOOLS_VERSION"-*.whl >&2
  # The agent is pure Python with its data files inside the package: copied as is, which
  # needs no build backend on the host and leaves no build debris in the checkout.
  # The compiled catalogs are committed beside their .po (scripts/i18n.sh compile): a
  # language without its .mo would silently fall back to English on the stick.
  local po
  for po in "$REPO"/agent/locale/*/LC_MESSAGES/*.po; do
    [ -f "${po%.po}.mo" ] || die "${po%.po}.mo is missing: run scripts/i18n.sh compile"
  done
  cp -a "$REPO/agent" "$LAYER/$SITE/agent"
  find "$LAYER/$SITE/agent" -name __pycache__ -prune -exec rm -rf {} +
  rm -rf "$LAYER/$SITE/bin"
  mkdir -p "$LAYER/usr/local/bin"
  cat > "$LAYER/usr/local/bin/ardoise" <<'LAUNCHER'
#!/usr/bin/python3
import sys

from agent.cli import main

sys.exit(main())
LAUNCHER
  chmod 0755 "$LAYER/usr/local/bin/ardoise"
  # Byte-compile now: the squashfs is read-only, and compiling at every boot costs seconds
  # under emulation and on old laptops. Same CPython minor version as bookworm's (3.11).
  "$WORK/pip-venv/bin/python" -m compileall -q -j 0 "$LAYER/$SITE" >&2
  echo "$VERSION" > "$LAYER/usr/local/lib/ardoise/version"
  mkdir -p "$ISO_TREE/live"
  mksquashfs "$LAYER" "$ISO_TREE/live/20-ardoise.squashfs" -comp xz -noappend -quiet \
    -all-root >&2
}

# --- stage 4: boot loaders, data partition, ISO -----------------------------------------
SHIM_DEB_DIR=$CACHE/debs
fetch_signed_bootloaders() {
  # Debian's signed chain for Secure Boot: shim (signed by Microsoft's UEFI CA), GRUB and
  # the kernel (signed by Debian). Taken from the host's apt, like any package.
  mkdir -p "$SHIM_DEB_DIR"
  local p
  for p in shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed; do
    if ! ls "$SHIM_DEB_DIR/${p}_"*.deb >/dev/null 2>&1; then
      (cd "$SHIM_DEB_DIR" && apt-get download "$p" >&2) \
        || die "cannot download $p (apt-get download $p)"
    fi
  done
  rm -rf "$SHIM_DEB_DIR/x"; mkdir -p "$SHIM_DEB_DIR/x"
  for p in "$SHIM_DEB_DIR"/*.deb; do
    dpkg-deb -x "$p" "$SHIM_DEB_DIR/x"
  done
}

grub_cfg() {
  local append="boot=live components quiet loglevel=3 systemd.show_status=auto"
  append+=" console=tty1 console=ttyS0,115200n8 fsck.mode=skip"
  cat <<EOF
# Ardoise live image ($VERSION). Shared by the BIOS and UEFI (signed GRUB) paths.
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set default=0
set timeout=1
# 32-bit UEFI (Bay Trail netbooks and tablets) boots this amd64 image in EFI mixed mode
# through an unsigned ia32 GRUB: Debian signs none, so Secure Boot must be off there.
if [ "\$grub_platform" = "efi" ]; then
  if [ "\$grub_cpu" = "i386" ]; then
    # No accents: GRUB's console has no font for them before the menu.
    echo "UEFI 32 bits : Secure Boot doit etre desactive."
    echo "32-bit UEFI: Secure Boot must be off."
    set timeout=3
  fi
fi

# The first entry (the default) speaks the language of ardoise.yaml (else English); the
# next two choose it, overriding the stick's file. Menu titles stay ASCII: GRUB's text
# console cannot be trusted with accented letters on every firmware.
menuentry "Ardoise $VERSION: audit, sanitize, certify (unattended; language of ardoise.yaml)" {
    linux /live/vmlinuz $append
    initrd /live/initrd.img
}
menuentry "Ardoise $VERSION - Francais : audit, effacement, certificats (clavier AZERTY)" {
    linux /live/vmlinuz $append ardoise.language=fr
    initrd /live/initrd.img
}
menuentry "Ardoise $VERSION - English: audit, sanitize, certify" {
    linux /live/vmlinuz $append ardoise.language=en
    initrd /live/initrd.img
}
menuentry "Ardoise $VERSION (safe graphics: nomodeset)" {
    linux /live/vmlinuz $append nomodeset
    initrd /live/initrd.img
}
EOF
}

build_iso_tree() {
  local id=$1
  mkdir -p "$ISO_TREE/live" "$ISO_TREE/boot/grub/i386-pc" "$ISO_TREE/.disk"
  # Hard links: same file system as the cache, and xorriso only reads them.
  ln -f "$BASE/10-base.squashfs" "$ISO_TREE/live/10-base.squashfs" 2>/dev/null \
    || cp "$BASE/10-base.squashfs" "$ISO_TREE/live/10-base.squashfs"
  cp "$BASE/vmlinuz" "$ISO_TREE/live/vmlinuz"
  cp "$BASE/initrd.img" "$ISO_TREE/live/initrd.img"
  echo "Ardoise $VERSION amd64 ($(date -u +%Y-%m-%d))" > "$ISO_TREE/.disk/info"
  : > "$ISO_TREE/.disk/ardoise-$id"
  grub_cfg > "$ISO_TREE/boot/grub/grub.cfg"

  # BIOS: GRUB's El Torito core image, also reachable from the hybrid MBR on a stick. Every
  # module grub.cfg needs is built into it (grub-mkimage adds their dependencies), as for
  # the ia32 GRUB below: the 275 loose i386-pc modules (3.4 MB) stay off the ISO.
  cat > "$WORK/load.cfg" <<EOF
search --no-floppy --set=root --file /.disk/ardoise-$id
set prefix=(\$root)/boot/grub
EOF
  grub-mkimage -O i386-pc-eltorito -p /boot/grub -c "$WORK/load.cfg" \
    -o "$ISO_TREE/boot/grub/i386-pc/eltorito.img" \
    biosdisk iso9660 part_msdos fat search search_fs_file configfile normal linux echo test \
    serial terminal

  # UEFI: the EFI system partition, with shim as the removable-media loader.
  local efi=$WORK/efi.img x=$SHIM_DEB_DIR/x
  rm -f "$efi"
  mkfs.vfat -C -n ARDOISE_EFI "$efi" 8192 >/dev/null
  mmd -i "$efi" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$efi" "$x/usr/lib/shim/shimx64.efi.signed" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$efi" "$x/usr/lib/shim/mmx64.efi.signed" ::/EFI/BOOT/mmx64.efi
  mcopy -i "$efi" "$x/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::/EFI/BOOT/grubx64.efi
  # 32-bit UEFI: GRUB for ia32 boots the 64-bit kernel through the EFI handover protocol
  # (EFI mixed mode, CONFIG_EFI_MIXED in Debian's kernel). Unsigned: Secure Boot off.
  grub-mkimage -O i386-efi -p /boot/grub -c "$WORK/load.cfg" -o "$WORK/bootia32.efi" \
    part_msdos part_gpt fat iso9660 search search_fs_file configfile normal linux echo test \
    serial terminal efi_gop efi_uga all_video
  mcopy -i "$efi" "$WORK/bootia32.efi" ::/EFI/BOOT/BOOTIA32.EFI
  # The signed GRUB's built-in prefix is /EFI/debian on the device it was loaded from.
  cat > "$WORK/efi-grub.cfg" <<EOF
search --no-floppy --set=root --file /.disk/ardoise-$id
set prefix=(\$root)/boot/grub
configfile (\$root)/boot/grub/grub.cfg
EOF
  mcopy -i "$efi" "$WORK/efi-grub.cfg" ::/EFI/debian/grub.cfg

  # The data partition: FAT, label ARDOISE, writable once the image is on a stick.
  local data=$WORK/data.img example=$REPO/image/ardoise.yaml.example
  rm -f "$data"
  # 60 MiB: config, key and logs take a few MB; the spool holds some 800 certificates (JSON
  # and PDF) before a collector takes them. One MiB less than before keeps the ISO in its
  # 250 MB budget now that it carries the French catalogs and Babel.
  mkfs.vfat -C -n ARDOISE "$data" $((60 * 1024)) >/dev/null
  if [ -f "$example" ]; then
    mcopy -i "$data" "$example" ::/ardoise.yaml
  else
    printf '# Ardoise configuration: see docs/config.md\n' > "$WORK/ardoise.yaml"
    mcopy -i "$data" "$WORK/ardoise.yaml" ::/ardoise.yaml
  fi
  mcopy -i "$data" "$REPO/image/data-README.txt" ::/README.txt
}

write_iso() {
  local out=$1
  xorriso -as mkisofs -o "$out" \
    -iso-level 3 -full-iso9660-filenames -joliet -joliet-long -rational-rock \
    -volid ARDOISE_LIVE -appid "Ardoise $VERSION" -publisher "Ardoise" \
    --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img \
    -partition_offset 16 --mbr-force-bootable \
    -append_partition 2 0xef "$WORK/efi.img" \
    -append_partition 3 0x0c "$WORK/data.img" \
    -eltorito-boot boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 \
      -boot-info-table --grub2-boot-info \
    -eltorito-catalog boot/grub/boot.cat \
    -eltorito-alt-boot -e --interval:appended_partition_2:all:: -no-emul-boot \
    "$ISO_TREE" >"$WORK/xorriso.log" 2>&1 || { cat "$WORK/xorriso.log" >&2; die "xorriso failed"; }
  [ -s "$out" ] || die "xorriso wrote no image"
}

write_manifest() {
  local out=$1 dirty=""
  [ -n "$(git -C "$REPO" status --porcelain -- agent 2>/dev/null)" ] && dirty="-dirty"
  {
    echo "# Ardoise live image manifest"
    echo "agent_version: $VERSION"
    echo "agent_commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty"
    echo "fpdf2: $FPDF2_VERSION (PyPI wheel)"
    echo "fonttools: $FONTTOOLS_VERSION (PyPI wheel)"
    echo "debian: $SUITE $(cat "$BASE/debian_version") from $MIRROR"
    echo "base_built_at: $(cat "$BASE/built-at")"
    echo "image_built_at: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "base_key: $BASE_KEY"
    for p in "$SHIM_DEB_DIR"/*.deb; do
      echo "bootloader: $(dpkg-deb -f "$p" Package) $(dpkg-deb -f "$p" Version)"
    done
    echo "bootloader: grub-efi-ia32-bin $(dpkg-query -W -f='${Version}' grub-efi-ia32-bin) (unsigned, BOOTIA32.EFI)"
    # Which Secure Boot keys accept the stick: the CAs that signed shim (2011 and/or 2023).
    sbverify --list "$SHIM_DEB_DIR/x/usr/lib/shim/shimx64.efi.signed" 2>/dev/null \
      | sed -n 's/^ - \/.*CN=\(.*\)$/shim_signer: \1/p'
    echo "kernel: $(cat "$BASE/kernel-version")"
    # The kernel's package and version, and who signed it (shim and GRUB check it against
    # Debian's Secure Boot CA, which shim carries).
    awk -F'\t' -v k="linux-image-$(cat "$BASE/kernel-version")" \
      '$1 == k {print "kernel_package: " $1 " " $2}' "$BASE/packages.tsv"
    sbverify --list "$BASE/vmlinuz" 2>/dev/null \
      | sed -n 's/^ - subject: .*CN=\(.*\)$/kernel_signer: \1/p'
    # The boot files as on the ISO: ardoise-collector netboot checks what it extracts.
    (cd "$ISO_TREE" && sha256sum live/vmlinuz live/initrd.img live/*.squashfs) \
      | awk '{print "sha256: " $2 " " $1}'
    echo
    echo "# firmware files from $SUITE-backports: package, version, file (image/firmware-backports.list)"
    cat "$BASE/firmware-backports.tsv" 2>/dev/null || true
    echo
    echo "# firmware packages: name, version, installed size (KiB)"
    awk -F'\t' '$1 ~ /^firmware-/' "$BASE/packages.tsv"
    echo
    echo "# packages: name, version, installed size (KiB)"
    cat "$BASE/packages.tsv"
  } > "$out"
}

START=$(date +%s)
rm -rf "$ISO_TREE"
build_agent_layer
fetch_signed_bootloaders
BUILD_ID=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
build_iso_tree "$BUILD_ID"
mkdir -p "$OUT"
ISO=$OUT/ardoise-$VERSION-amd64.iso
write_iso "$ISO.tmp"
mv -f "$ISO.tmp" "$ISO"
write_manifest "$OUT/ardoise-$VERSION-amd64.manifest.txt"
(cd "$OUT" && sha256sum "$(basename "$ISO")" > "$(basename "$ISO").sha256")
log "image: $ISO ($(du -h "$ISO" | cut -f1); agent layer $(du -h "$ISO_TREE/live/20-ardoise.squashfs" | cut -f1); agent stage $(( $(date +%s) - START )) s)"
echo "$ISO"
exit 0
}
