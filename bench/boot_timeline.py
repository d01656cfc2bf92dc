"""Where the boot time goes, per firmware, from the serial logs the e2e VM runs keep.

The e2e tests (tests/e2e, scenario.keep_diagnostics) leave `serial.log` and `timing.txt` in
/var/tmp/ardoise-e2e/<firmware>/. The guest's journal reaches the serial console with the
kernel's uptime stamps, so each step is read on the guest's own clock:

- before the kernel: QEMU start to the kernel's first instant (firmware, GRUB, reading
  vmlinuz and initrd.img off the stick), = wall-clock "agent ready" minus its uptime;
- kernel + initramfs: uptime of systemd's first line (the initramfs has handed over);
- systemd to `ardoise-image: session starting`;
- the session's checks to `ardoise-image: agent ready` (udev settle, data partition);
- Python start to the agent's first own line (`ardoise: looking for disks`, or the French
  `recherche des disques`): imports and the first probe.

The reference each total is compared with is the issue's 30 s goal for the agent's first
own line, measured from power-on (QEMU start).

    python3 bench/boot_timeline.py [DIR ...]   # default: every /var/tmp/ardoise-e2e/*/
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

GOAL_S = 30.0
STAMP = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")
FIRST_AGENT_LINE = re.compile(r"ardoise: (looking for disks|recherche des disques)")


def timeline(run: Path) -> dict | None:
    serial = run / "serial.log"
    timing = run / "timing.txt"
    if not serial.is_file() or not timing.is_file():
        return None
    ready_wall = re.search(r"ready_after=([\d.]+)", timing.read_text())
    marks: dict[str, float] = {}
    for line in serial.read_text(errors="replace").splitlines():
        m = STAMP.match(line.strip("\r"))
        if not m:
            continue
        t, text = float(m.group(1)), m.group(2)
        if "systemd[1]:" in text:
            marks.setdefault("systemd", t)
        if "ardoise-image: session starting" in text:
            marks.setdefault("session", t)
        if "ardoise-image: agent ready" in text:
            marks.setdefault("ready", t)
        if FIRST_AGENT_LINE.search(text):
            marks.setdefault("first", t)
    if not ready_wall or not {"systemd", "session", "ready", "first"} <= marks.keys():
        return None
    firmware_s = float(ready_wall.group(1)) - marks["ready"]
    return {
        "run": run.name,
        "before kernel": firmware_s,
        "kernel+initramfs": marks["systemd"],
        "systemd→session": marks["session"] - marks["systemd"],
        "session→ready": marks["ready"] - marks["session"],
        "ready→first line": marks["first"] - marks["ready"],
        "first line (power-on)": firmware_s + marks["first"],
    }


def main(argv: list[str]) -> int:
    dirs = [Path(a) for a in argv] or sorted(p for p in Path("/var/tmp/ardoise-e2e").glob("*") if p.is_dir())
    rows = [r for r in (timeline(d) for d in dirs) if r]
    if not rows:
        print("boot_timeline: no complete run (serial.log with the agent's first line, and timing.txt)",
              file=sys.stderr)
        return 1
    cols = list(rows[0])[1:]
    print("| run | " + " | ".join(cols) + f" | ratio to the {GOAL_S:.0f} s goal |")
    print("| --- " * (len(cols) + 2) + "|")
    for r in rows:
        cells = " | ".join(f"{r[c]:.1f}" for c in cols)
        print(f"| {r['run']} | {cells} | {r['first line (power-on)'] / GOAL_S:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
