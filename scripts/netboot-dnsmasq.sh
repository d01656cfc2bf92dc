#!/usr/bin/env bash
# Writes a proxy-DHCP dnsmasq configuration for booting laptops with Ardoise from the
# network, and the TFTP tree it serves (docs/netboot.md). Proxy-DHCP: the workshop's DHCP
# server keeps giving addresses; dnsmasq only adds the PXE boot answers.
#
# Usage: netboot-dnsmasq.sh --interface IF --subnet NET --server IP [--port 8070]
#                           [--uefi-ipxe MAC]... [--tftp-root /srv/ardoise-netboot]
#                           [--conf /etc/dnsmasq.d/ardoise-netboot.conf]
#   IF      the interface on the laptops' switch (eth0)
#   NET     that LAN's network address (192.168.1.0)
#   IP      this machine's address there, where `ardoise-collector netboot` listens
#   MAC     a UEFI laptop that boots iPXE (snponly.efi) instead of shim + signed GRUB:
#           for a model whose firmware refuses shim; Secure Boot must be off on it
# Needs Debian's dnsmasq, ipxe (undionly.kpxe, snponly.efi), shim-signed and
# grub-efi-amd64-signed (grubnetx64.efi.signed, for Secure Boot): installed if missing.
set -euo pipefail

IFACE="" SUBNET="" SERVER="" PORT=8070
UEFI_IPXE=()
TFTP=/srv/ardoise-netboot
CONF=/etc/dnsmasq.d/ardoise-netboot.conf
die() { echo "netboot-dnsmasq: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --interface) IFACE=${2:-}; shift ;;
    --subnet) SUBNET=${2:-}; shift ;;
    --server) SERVER=${2:-}; shift ;;
    --port) PORT=${2:-}; shift ;;
    --uefi-ipxe) UEFI_IPXE+=("${2:-}"); shift ;;
    --tftp-root) TFTP=${2:-}; shift ;;
    --conf) CONF=${2:-}; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done
[ -n "$IFACE" ] && [ -n "$SUBNET" ] && [ -n "$SERVER" ] || die "--interface, --subnet and --server are required"
ipv4='^([0-9]{1,3}\.){3}[0-9]{1,3}$'
[[ $SUBNET =~ $ipv4 ]] || die "--subnet $SUBNET is not an IPv4 network address"
[[ $SERVER =~ $ipv4 ]] || die "--server $SERVER is not an IPv4 address"
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "--port $PORT is not a port"
[[ $IFACE =~ ^[A-Za-z0-9._-]+$ ]] || die "--interface $IFACE is not an interface name"
for mac in ${UEFI_IPXE[@]+"${UEFI_IPXE[@]}"}; do
  [[ $mac =~ ^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$ ]] || die "--uefi-ipxe $mac is not a MAC address (aa:bb:cc:dd:ee:ff)"
done

if [ "${NETBOOT_DNSMASQ_NO_INSTALL:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root (apt-get, /etc/dnsmasq.d, $TFTP)"
  missing=()
  for p in dnsmasq ipxe shim-signed grub-efi-amd64-signed; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# The TFTP tree: the loaders (copied from Debian's packages) and two tiny stubs that hand
# over to the netboot service over HTTP, where each machine gets its own token.
LIB=${NETBOOT_DNSMASQ_LIB:-}   # tests point this at a fake /usr/lib
mkdir -p "$TFTP/grub"
install -m 0644 "$LIB/usr/lib/ipxe/undionly.kpxe" "$TFTP/undionly.kpxe"
# snponly.efi drives the NIC through the firmware's own network stack (the one that just
# loaded it), so it works on any UEFI NIC; Debian's ipxe.efi brings its own drivers.
install -m 0644 "$LIB/usr/lib/ipxe/snponly.efi" "$TFTP/snponly.efi"
# Secure Boot: shim (signed by Microsoft) loads grubx64.efi beside it = Debian's signed
# GRUB network image, which reads its menu from grub/grub.cfg beside itself, by TFTP.
install -m 0644 "$LIB/usr/lib/shim/shimx64.efi.signed" "$TFTP/shimx64.efi"
install -m 0644 "$LIB/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$TFTP/grubx64.efi"
cat > "$TFTP/ardoise.ipxe" <<IPXE
#!ipxe
chain http://$SERVER:$PORT/boot.ipxe
IPXE
# That GRUB has no HTTP client (and may not load one under Secure Boot): its kernel, initrds
# and menu come by TFTP too, written into $TFTP/ardoise by `ardoise-collector netboot
# --tftp-root $TFTP`; this machine's token comes later, over HTTP, by MAC.
cat > "$TFTP/grub/grub.cfg" <<GRUB
# Ardoise: the menu is written by ardoise-collector netboot --tftp-root $TFTP
source /ardoise/grub.cfg
GRUB

mkdir -p "$(dirname "$CONF")"
cat > "$CONF" <<CONF
# Ardoise network boot, written by scripts/netboot-dnsmasq.sh (docs/netboot.md).
# Proxy-DHCP only: no address is given out here, the LAN's DHCP server does that.
port=0
interface=$IFACE
bind-interfaces
dhcp-range=$SUBNET,proxy
log-dhcp
enable-tftp
tftp-root=$TFTP
# iPXE says who it is in option 175: once iPXE runs, give it the stub that chains to HTTP.
dhcp-match=set:ipxe,175
# The server address is given so that it is in the answer to BIOS iPXE too (without it,
# dnsmasq leaves next-server empty for x86PC clients and iPXE finds nothing to boot).
dhcp-boot=tag:ipxe,ardoise.ipxe,,$SERVER
# Firmware's own PXE (no iPXE yet): BIOS chainloads iPXE; UEFI gets shim, then Debian's
# signed GRUB, so Secure Boot may stay on. Debian 12's GRUB ignores proxy-DHCP answers: it
# finds this TFTP server only if the LAN's DHCP server names it as next-server (docs).
# The MACs tagged uefi-ipxe (--uefi-ipxe) get iPXE instead: the first service a machine
# matches is the one it boots.
$(for mac in ${UEFI_IPXE[@]+"${UEFI_IPXE[@]}"}; do echo "dhcp-mac=set:uefi-ipxe,$mac"; done)
pxe-service=tag:!ipxe,x86PC,"Ardoise (BIOS)",undionly.kpxe
pxe-service=tag:!ipxe,tag:uefi-ipxe,X86-64_EFI,"Ardoise (UEFI, iPXE)",snponly.efi
pxe-service=tag:!ipxe,X86-64_EFI,"Ardoise (UEFI)",shimx64.efi
pxe-prompt="Ardoise",0
CONF
echo "netboot-dnsmasq: wrote $CONF and $TFTP; start: systemctl restart dnsmasq" >&2
