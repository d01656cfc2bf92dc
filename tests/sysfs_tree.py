"""Build a small sysfs tree from a recorded machine (tests/fixtures/sysfs/<machine>.json).

Why JSON rather than a checked-in tree: sysfs is made of symlinks (driver, /sys/block,
/sys/bus/pci/devices) that the real code follows with realpath; the builder lays them
out exactly as the kernel does, under a temporary root, from a file a reviewer can read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SYSFS_FIXTURES = Path(__file__).parent / "fixtures" / "sysfs"


def load(machine: str) -> dict:
    return json.loads((SYSFS_FIXTURES / f"{machine}.json").read_text())


def build(spec: dict, root: Path) -> Path:
    """Lay ``spec`` out under ``root`` and return root (the ``sys_root``)."""
    devices = root / "devices"
    pci_bus = root / "bus" / "pci" / "devices"
    pci_bus.mkdir(parents=True, exist_ok=True)
    (root / "block").mkdir(parents=True, exist_ok=True)
    for path, attrs in spec.get("pci", {}).items():
        d = devices / path
        d.mkdir(parents=True, exist_ok=True)
        for name in ("class", "vendor", "device"):
            if name in attrs:
                (d / name).write_text(attrs[name] + "\n")
        if attrs.get("driver"):
            drv = root / "bus" / "pci" / "drivers" / attrs["driver"]
            drv.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(drv, d), d / "driver")
        os.symlink(os.path.relpath(d, pci_bus), pci_bus / d.name)
    for name, path in spec.get("block", {}).items():
        d = devices / path
        d.mkdir(parents=True, exist_ok=True)
        (d / "size").write_text("1000\n")
        os.symlink(os.path.relpath(d, root / "block"), root / "block" / name)
    return root
