"""Fixtures of the end-to-end test: the live image, built once per session by
build_image.sh (the base is cached outside the repo, so reruns take a minute or two)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from live_collector import Collector

REPO = Path(__file__).resolve().parents[2]
BUILD_LOG = Path("/var/tmp/ardoise-e2e-build.log")


@pytest.fixture(scope="session")
def live_image(tmp_path_factory):
    """(iso path, manifest path, build seconds) of an image built from this checkout."""
    if os.geteuid() != 0:
        pytest.skip("the live image is built as root (debootstrap, chroot)")
    for tool in ("qemu-system-x86_64", "xorriso", "mksquashfs", "mcopy", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run scripts/install-deps.sh")
    out = tmp_path_factory.mktemp("dist")
    start = time.monotonic()
    with open(BUILD_LOG, "w") as log:
        r = subprocess.run(["bash", str(REPO / "build_image.sh"), "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=log, text=True)
    seconds = time.monotonic() - start
    if r.returncode != 0:
        tail = "".join(BUILD_LOG.read_text(errors="replace").splitlines(True)[-30:])
        pytest.fail(f"build_image.sh failed ({r.returncode}); log {BUILD_LOG}:\n{tail}")
    iso = Path(r.stdout.strip().splitlines()[-1])
    manifests = list(out.glob("*.manifest.txt"))
    assert iso.is_file() and len(manifests) == 1
    return iso, manifests[0], seconds


@pytest.fixture
def collector(tmp_path):
    """A collector on SQLite on the host's loopback (10.0.2.2 from the guest)."""
    c = Collector(tmp_path).start()
    yield c
    c.stop()
