#!/usr/bin/env bash
# The README's first command: one command on a fresh Debian 12 machine, as root.
#  1. installs the dependencies (scripts/install-deps.sh) and builds the live image if needed;
#  2. starts a local collector on SQLite and creates an enrollment token;
#  3. boots the image under QEMU (TCG) as a USB stick, against three virtual disks (NVMe,
#     SATA, USB) filled with sample data, and shows the serial console;
#  4. prints the collector's URL and the verification result of each certificate, and how
#     to write the image to a real stick.
# Options: --port N (collector port, default 8088), --stop (stop the collector at the end
# instead of leaving it running for you to browse).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PORT=8088
KEEP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift ;;
    --stop) KEEP=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it installs packages and builds the image)" >&2
  exit 1
fi

say "Installing dependencies"
bash scripts/install-deps.sh

VERSION=$(.venv/bin/python -c 'import agent; print(agent.__version__)')
ISO=$REPO/dist/ardoise-$VERSION-amd64.iso
# Rebuild when any input is newer than the image (the base is cached: a minute or two).
if [ ! -f "$ISO" ] || [ -n "$(find agent image build_image.sh -newer "$ISO" -print -quit)" ]; then
  say "Building the live image (first time: about 15 minutes; later: a minute or two)"
  bash build_image.sh
fi
ls -l "$ISO"

if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
  echo "demo: port $PORT is in use (a collector from an earlier demo?); pass --port N or stop it" >&2
  exit 1
fi
WORK=/var/tmp/ardoise-demo
rm -rf "$WORK"; mkdir -p "$WORK"
DB="sqlite:///$WORK/collector.db"
COLLECTOR=.venv/bin/ardoise-collector

say "Starting a local collector on SQLite: http://127.0.0.1:$PORT/"
$COLLECTOR migrate --db "$DB" >/dev/null
TOKEN=$($COLLECTOR token create --lot demo --db "$DB" | head -n1)
$COLLECTOR serve --db "$DB" --host 127.0.0.1 --port "$PORT" --no-access-log \
  > "$WORK/collector.log" 2>&1 &
COLLECTOR_PID=$!
stop_collector() { [ "$KEEP" -eq 1 ] || kill "$COLLECTOR_PID" 2>/dev/null || true; }
trap stop_collector EXIT
for _ in $(seq 1 50); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" \
    2>/dev/null && break
  sleep 0.2
done

say "Preparing the stick and three disks with sample data"
STICK=$WORK/stick.img
cp "$ISO" "$STICK"
# The stick's data partition is the last MBR partition (FAT, label ARDOISE).
OFFSET=$(python3 - "$STICK" <<'EOF'
import struct, sys
mbr = open(sys.argv[1], "rb").read(512)
for i in range(4):
    e = mbr[446 + 16 * i: 462 + 16 * i]
    if e[4] == 0x0C:
        print(struct.unpack("<I", e[8:12])[0] * 512)
EOF
)
cat > "$WORK/ardoise.yaml" <<EOF
# Demo configuration, written by scripts/demo.sh. In QEMU's user network the host's
# 127.0.0.1 is 10.0.2.2.
collector:
  url: http://10.0.2.2:$PORT
  token: $TOKEN
  # plain http to the host, on QEMU's private network only
  allow_insecure_http: true
operator:
  name: Demo Technician
  organization: Ardoise demo workshop
  location: QEMU
lot: demo
on_finish: poweroff
EOF
MTOOLS_SKIP_CHECK=1 mcopy -o -i "$STICK@@$OFFSET" "$WORK/ardoise.yaml" ::/ardoise.yaml

mkdir -p "$WORK/sample/Documents"
for i in 1 2 3 4 5; do
  # `yes` dies of SIGPIPE when head has enough: not an error here.
  { yes "Donor's confidential letter $i: bank account FR76 3000 6000 0112 3456 7890 189" || true; } \
    | head -n 4000 > "$WORK/sample/Documents/letter$i.txt"
done
disk() {  # name size_MiB
  truncate -s "$2M" "$WORK/$1.img"
  mkfs.ext4 -q -F -L "$1" -d "$WORK/sample" "$WORK/$1.img"
}
disk nvme 128; disk sata 128; disk usb 64

say "Booting the image under QEMU (serial console below; TCG emulation, a few minutes)"
QEMU=(qemu-system-x86_64 -accel tcg -machine q35 -smp 2 -m 1536
  -display none -vga std -monitor none -no-reboot -serial stdio
  -device qemu-xhci,id=xhci -device ahci,id=ahci0
  -drive if=none,id=stick,format=raw,file="$STICK",cache=unsafe
  -device usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=0
  -drive if=none,id=nvme,format=raw,file="$WORK/nvme.img",cache=unsafe
  -device nvme,serial=DEMO-NVME-1,drive=nvme
  -drive if=none,id=sata,format=raw,file="$WORK/sata.img",cache=unsafe
  -device ide-hd,bus=ahci0.0,drive=sata,serial=DEMO-SATA-2
  -drive if=none,id=usbd,format=raw,file="$WORK/usb.img",cache=unsafe
  -device usb-storage,bus=xhci.0,drive=usbd,serial=DEMO-USB-3
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0)
timeout 1800 "${QEMU[@]}" < /dev/null || echo "demo: QEMU exited with status $?" >&2

say "Certificates at the collector"
python3 - "$PORT" <<'EOF'
import json, sys, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
listing = json.load(urllib.request.urlopen(f"{base}/api/v1/certificates?lot=demo", timeout=10))
if not listing["items"]:
    print("  no certificate reached the collector (see the serial console above)")
for c in listing["items"]:
    # Re-verify the stored envelope through the public check (signature, schema, consistency).
    stored = json.load(urllib.request.urlopen(f"{base}/api/v1/certificates/{c['id']}", timeout=10))
    body = json.dumps(stored["envelope"]).encode()
    req = urllib.request.Request(f"{base}/api/v1/verify", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        verdict = json.load(urllib.request.urlopen(req, timeout=10))
    except urllib.error.HTTPError as exc:
        verdict = json.load(exc)
    ok = "VALID" if verdict.get("valid") else "INVALID: " + "; ".join(verdict.get("reasons", []))
    print(f"  {c['serial'] or '?':<14} {c['category'] or '-':<6} {c['method'] or '-':<28} "
          f"{c['outcome'] or '-':<10} {ok}")
    print(f"      {base}/certificates/{c['id']}  (PDF: {base}/certificates/{c['id']}.pdf)")
EOF

for d in nvme sata usb; do
  if grep -q -a "Donor's confidential" "$WORK/$d.img"; then
    echo "  $d.img: sample data still present"
  else
    echo "  $d.img: no sample data left"
  fi
done

cat <<EOF

Collector: http://127.0.0.1:$PORT/  (certificates, lots, verification page; SQLite in $WORK)
Image:     $ISO

Write the image to a real USB stick (this erases the stick), keeping its ARDOISE data
partition, where ardoise.yaml, the station key and the certificate spool live:
  Linux:   dd if=$ISO of=/dev/sdX bs=4M conv=fsync status=progress
  Windows: Rufus, and answer "Write in DD Image mode" (ISO mode drops the data partition)
  Ventoy:  copy the .iso onto the Ventoy stick; keep settings in a FAT partition labelled
           ARDOISE (see docs/image.md)
Then edit ardoise.yaml on the stick's ARDOISE partition (collector URL and token).
EOF
if [ "$KEEP" -eq 1 ]; then
  echo "The collector keeps running (pid $COLLECTOR_PID, log $WORK/collector.log); stop it with: kill $COLLECTOR_PID"
fi
