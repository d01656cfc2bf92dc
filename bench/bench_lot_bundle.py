#!/usr/bin/env python3
"""Benchmark of a large lot's closing, outside any database: reconcile N declared devices
(one audit report and one certificate each), build and sign the lot report, render its
PDF, stream the donor's bundle to a file, and check it with ``verify_bundle``.

Reports the time of each stage and the peak Python heap (tracemalloc) of the streaming
and of the check. Not a test: results go to BENCHMARKS.md.

    PYTHONPATH=. .venv/bin/python bench/bench_lot_bundle.py [--devices 5000]

Certificates and audit reports are built and signed before the clock starts, with the
agent's own payload builder and signer. Certificate PDFs are given to the bundle as
stored bytes (``--render-pdfs`` renders them instead, as a collector without stored PDFs
would have to).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from lot_samples import SampleLot  # noqa: E402

from agent.certify.bundle import verify_bundle  # noqa: E402
from agent.certify.envelope import envelope_digest  # noqa: E402
from agent.certify.keys import StationKey  # noqa: E402
from server_stub.lots.bundle import BundledAudit, BundledCertificate, stream_bundle  # noqa: E402
from server_stub.lots.inventory import DeclaredDevice  # noqa: E402
from server_stub.lots.reconcile import reconcile  # noqa: E402
from server_stub.lots.report import LotInfo, build_report, may_close, sign_report  # noqa: E402
from server_stub.lots.report_pdf import render_report_pdf  # noqa: E402


def stage(name: str, t0: float) -> float:
    t = time.perf_counter()
    print(f"{name:<40} {t - t0:8.2f} s", flush=True)
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--render-pdfs", action="store_true")
    ap.add_argument("--no-heap", action="store_true",
                    help="time without tracemalloc (which slows allocation-heavy code, PDF rendering most)")
    args = ap.parse_args()
    n = args.devices
    keys = [StationKey.generate() for _ in range(4)]
    lot = SampleLot(keys)
    t0 = time.perf_counter()
    declared = []
    for i in range(n):
        k = keys[i % len(keys)]
        a = lot.add_audit(k, f"MACHINE{i:06d}", [f"DISK{i:06d}"])
        lot.add_certificate(k, f"DISK{i:06d}", audit_id=a["report_id"], verdict="good")
        declared.append(DeclaredDevice(i + 2, f"MACHINE{i:06d}", f"INV-{i:06d}", "ThinkPad T480", "Portable", "Lenovo"))
    certs, audits = lot.certificate_facts(), lot.audit_facts()
    t = stage(f"setup: sign {n} audits + {n} certificates", t0)

    recon = reconcile(declared, certs, audits)
    t = stage("reconcile", t)
    collector = StationKey.generate()
    payload = build_report(LotInfo("BENCH", "Donor", "Workshop", "fr", "2026-11-20"), recon, certs, audits,
                           collector_key_id=collector.key_id, closed_at="2026-12-05T15:00:00Z", closed_by="bench",
                           closure=may_close(recon, is_manager=False))
    envelope = sign_report(payload, collector)
    report_bytes = json.dumps(envelope).encode()
    t = stage(f"build + sign report ({len(report_bytes) >> 10} KiB)", t)
    pdf = render_report_pdf(payload, envelope_digest(envelope))
    t = stage(f"report PDF ({len(pdf) >> 10} KiB)", t)

    stored_pdf = b"%PDF-1.4\n" + os.urandom(40_000)  # about a real certificate PDF's size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lot.zip"
        bundled = ((BundledCertificate(envelope_digest(e), e, None if args.render_pdfs else stored_pdf))
                   for _, e in lot.certificates)
        gc.collect()
        trace = not args.no_heap
        if trace:
            tracemalloc.start()
        with open(path, "wb") as f:
            for chunk in stream_bundle(lot="BENCH", donor="Donor", language="fr", report_envelope=report_bytes,
                                       report_pdf=pdf, collector_key=collector,
                                       station_keys={k.key_id: k.public_pem for k in keys}, certificates=bundled,
                                       audits=(BundledAudit(envelope_digest(e), e) for _, e in lot.audits)):
                f.write(chunk)
        heap = f", peak heap {tracemalloc.get_traced_memory()[1] >> 20} MiB" if trace else ""
        tracemalloc.stop()
        t = stage(f"stream bundle ({path.stat().st_size >> 20} MiB){heap}", t)
        gc.collect()
        if trace:
            tracemalloc.start()
        r = verify_bundle(path, {collector.key_id: collector.public_key})
        heap = f", peak heap {tracemalloc.get_traced_memory()[1] >> 20} MiB" if trace else ""
        tracemalloc.stop()
        stage(f"verify --bundle ({r.certificates} certificates){heap}", t)


if __name__ == "__main__":
    main()
