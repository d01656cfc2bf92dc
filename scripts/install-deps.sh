#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine, as root:
# Debian packages, a PostgreSQL server for the collector tests, and the Python
# environment in .venv with the agent and the collector installed from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # the agent's hardware tools
  smartmontools nvme-cli hdparm sg3-utils dmidecode util-linux udev pciutils mmc-utils
  # Python environment
  python3 python3-venv python3-dev gcc
  # tests: filesystems to plant data, PDF text extraction, terminal capture, namespaces
  e2fsprogs dosfstools mtools poppler-utils tmux iproute2 openssl
  # tests: decode the QR code a certificate PDF draws (zbarimg)
  zbar-tools
  # collector tests: a real PostgreSQL and a real browser
  postgresql chromium fonts-dejavu-core
  # live image build and boot
  debootstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin grub-common
  mtools dosfstools qemu-system-x86 qemu-utils ovmf ovmf-ia32 grub-efi-ia32-bin sbsigntool
  # network boot e2e: the virtio-net iPXE option ROM QEMU boots from; the table test's
  # proxy-DHCP/TFTP server (dnsmasq-base: the binary without a system service) and the
  # loaders it serves, as scripts/netboot-dnsmasq.sh does in a workshop
  ipxe-qemu dnsmasq-base ipxe shim-signed grub-efi-amd64-signed
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get, loop devices, PostgreSQL)" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# PostgreSQL for the collector's shared-database tests.
if command -v pg_lsclusters >/dev/null; then
  cluster=$(pg_lsclusters -h | awk 'NR==1{print $1" "$2}')
  if [ -n "$cluster" ]; then
    pg_ctlcluster $cluster start 2>/dev/null || true
    for _ in $(seq 1 30); do
      su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
      sleep 1
    done
    su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='ardoise'\"" | grep -q 1 \
      || su postgres -c "psql -qc \"create role ardoise login password 'ardoise' createdb\""
    su postgres -c "psql -qtAc \"select 1 from pg_database where datname='ardoise_test'\"" | grep -q 1 \
      || su postgres -c "createdb -O ardoise ardoise_test"
  fi
fi

# Debian's own Python, the one the live image runs the agent on.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[server,dev]'
echo "install-deps: ready (.venv)"
