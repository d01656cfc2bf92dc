"""Which partition is the stick's data partition (ardoise.yaml, station key, spool).

Not "the partition labelled ARDOISE": anyone can label a partition ARDOISE, and a donated
disk so labelled would then hand the agent its config (another collector, another lot)
and receive the station key and the certificates. On the live image the data partition is
the one labelled ARDOISE *on the medium live-boot booted from*, i.e. the disk that holds
/run/live/medium. The image's agent-session mounts the partition this module names
(``python3 -m agent.discover.stick``), and ``config.find_data_partition`` uses it too, so
the mount and the agent cannot disagree.

Outside a live boot (a workstation, a container, the test suite) there is no boot medium
to anchor on, and the label is all there is: the partition /dev/disk/by-label/ARDOISE
points to.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from agent.discover.system import LIVE_MEDIUM_MOUNTS, SystemState

DATA_LABEL = "ARDOISE"
BY_LABEL = Path("/dev/disk/by-label")
_LIVE_SIGNALS = frozenset(f"holds {m}" for m in LIVE_MEDIUM_MOUNTS)

Label = tuple[str, "str | None", "str | None"]  # (devnode, fstype, label), as probe records them


@dataclass(frozen=True)
class DataPartition:
    device: str | None  # /dev/sdb3, or None: no data partition to use
    why: str  # one line for the log: which partition and why that one (or why none)


def live_medium_disks(system: SystemState) -> set[str]:
    """The whole disks holding the live medium (the stick; a Ventoy disk; empty if none)."""
    return {disk for disk, signals in system.boot_signals.items() if _LIVE_SIGNALS.intersection(signals)}


def booted_live(system: SystemState) -> bool:
    """A live medium is mounted, whether or not its disk could be identified."""
    return any(m.mountpoint in LIVE_MEDIUM_MOUNTS for m in system.mounts)


def choose_data_partition(
    live_disks: set[str], labels: Mapping[str, Sequence[Label]], by_label_target: str | None, *, live: bool | None = None
) -> DataPartition:
    """The decision, on recorded facts: ``labels`` are the labels of each live disk and its
    partitions; ``by_label_target`` is where /dev/disk/by-label/ARDOISE points, if anywhere;
    ``live`` whether a live medium is mounted (default: some live disk is known)."""
    live = bool(live_disks) if live is None else live
    if live and not live_disks:
        # Booted live, but the medium's disk is unknown: the label alone is what an attacker
        # controls, so no data partition rather than a guess.
        return DataPartition(None, "the live medium's disk could not be identified: no data partition is trusted")
    if not live:
        if by_label_target is None:
            return DataPartition(None, f"no partition labelled {DATA_LABEL}")
        return DataPartition(by_label_target, f"{by_label_target} is labelled {DATA_LABEL} (not booted from a live medium)")
    medium = ", ".join(f"/dev/{d}" for d in sorted(live_disks))
    found = [
        node
        for disk in sorted(live_disks)
        for node, _fstype, label in labels.get(disk, ())
        if label == DATA_LABEL
    ]
    ignored = ""
    if by_label_target is not None and by_label_target not in found:
        ignored = f"; {by_label_target}, also labelled {DATA_LABEL}, is not on it and is ignored"
    if not found:
        return DataPartition(None, f"no partition labelled {DATA_LABEL} on the boot medium {medium}{ignored}")
    return DataPartition(found[0], f"{found[0]} is labelled {DATA_LABEL} on the boot medium {medium}{ignored}")


def find(by_label: Path = BY_LABEL, *, live_disks: set[str] | None = None) -> DataPartition:
    """The decision on this machine's live state (``live_disks``: tests name them)."""
    from agent.discover.probe import facts_for_disk
    from agent.discover.sysfs import Sysfs
    from agent.discover.system import read_system_state

    sysfs = Sysfs()
    if live_disks is None:
        system = read_system_state(sysfs)
        live_disks, booted = live_medium_disks(system), booted_live(system)
    else:
        booted = bool(live_disks)
    labels = {disk: facts_for_disk(disk, sysfs, probe_busy=False)[0].labels for disk in live_disks}
    link = by_label / DATA_LABEL
    target = os.path.realpath(link) if link.exists() else None
    return choose_data_partition(live_disks, labels, target, live=booted)


def main() -> int:
    """For the image's agent-session: print the data partition's device, or nothing (exit
    1); the reason goes to stderr, i.e. the journal and the serial console."""
    choice = find()
    print(f"ardoise-image: data partition: {choice.why}", file=sys.stderr)
    if choice.device is None:
        return 1
    print(choice.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
