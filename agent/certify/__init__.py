"""Signed erasure certificates: DSSE envelopes over a NIST SP 800-88 record, with a PDF.

``issue_certificate`` is what ``ardoise wipe`` and ``ardoise run`` call once per disk;
``sign_audit_report`` signs the machine's hardware report the same way.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.atomic import atomic_write
from agent.certify.envelope import AUDIT_TYPE, ERASURE_TYPE, dump_envelope, envelope_digest, sign_envelope
from agent.certify.audit_report import build_audit_payload
from agent.certify.payload import build_payload
from agent.errors import CertificateError
from agent.records import SanitizeResult

log = logging.getLogger("ardoise.certify")

__all__ = ["CertificateFiles", "issue_certificate", "sign_audit_report", "build_audit_payload", "certificate_basename"]


@dataclass
class CertificateFiles:
    json_path: Path
    pdf_path: Path | None  # None only when rendering failed; the JSON is still the proof
    id: str
    digest: str
    outcome: str
    envelope: dict
    payload: dict
    pdf_error: str | None = None


def certificate_basename(serial: str | None, device_name: str, certificate_id: str) -> str:
    """``<serial>-<id>`` with the serial made safe for any filesystem (FAT included)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", (serial or "").strip()).strip("._-")[:64]
    if not stem:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", device_name.strip()).strip("._-")[:64] or "disk"
    return f"{stem}-{certificate_id}"


def write_atomic(path: Path, data: bytes) -> None:
    """tmp + fsync + rename + fsync(dir): a reader (or a power cut) sees all or nothing."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise CertificateError(f"cannot write {path}: {exc.strerror}") from None


def issue_certificate(result: SanitizeResult, audit: Any, config: Any, key, out_dir: str | os.PathLike) -> CertificateFiles:
    """Build, sign and write ``<serial>-<id>.json`` (the envelope) and ``.pdf`` in ``out_dir``."""
    from agent.certify.links import certificate_qr
    from agent.certify.pdf import render_certificate_pdf
    from agent.certify.pdf_embed import Proof

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CertificateError(f"cannot create certificate directory {out}: {exc.strerror}") from None
    payload = build_payload(result, audit, config, key_id=key.key_id)
    envelope = sign_envelope(payload, ERASURE_TYPE, key)
    digest = envelope_digest(envelope)
    base = certificate_basename(result.disk.serial, result.disk.name, payload["certificate_id"])
    json_path = out / f"{base}.json"
    write_atomic(json_path, dump_envelope(envelope))
    pdf_path: Path | None = out / f"{base}.pdf"
    pdf_error = None
    try:
        collector = getattr(getattr(config, "collector", None), "url", None)
        pdf = render_certificate_pdf(payload, digest, key.key_id, proof=Proof.of(envelope, key.public_pem),
                                     qr_data=certificate_qr(collector, payload["certificate_id"], digest))
        write_atomic(pdf_path, pdf)
    except Exception as exc:  # noqa: BLE001 - the signed JSON is written; a PDF failure must not lose it
        log.warning("certificate %s: PDF not written: %s", payload["certificate_id"], exc)
        pdf_path, pdf_error = None, f"{type(exc).__name__}: {exc}"
    return CertificateFiles(json_path, pdf_path, payload["certificate_id"], digest, payload["sanitization"]["outcome"],
                            envelope, payload, pdf_error)


def sign_audit_report(audit: Any, key, *, lot: str | None = None) -> dict:
    """The machine audit as a signed DSSE envelope (payloadType ``AUDIT_TYPE``)."""
    return sign_envelope(build_audit_payload(audit, key=key, lot=lot), AUDIT_TYPE, key)
