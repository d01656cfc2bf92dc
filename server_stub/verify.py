"""The public check behind /verify and POST /api/v1/verify: any certificate, against every
key ever enrolled here (revoked ones too, and then marked), with the agent's own code."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from agent.certify import check, pdf_check
from agent.certify import envelope as env
from agent.errors import CertificateError
from server_stub import queries, stations
from server_stub.db import Database
from server_stub.errors import RateLimited


# A certificate PDF is about 45 KiB with its font subset; a long run of steps adds pages.
# Above this, the upload is refused before pypdf parses anything.
PDF_LIMIT = 1 << 20


def upload_limit(max_body: int) -> int:
    """The most the verify page reads: a JSON envelope is held to ``max_body``, a PDF to ``PDF_LIMIT``."""
    return max(max_body, PDF_LIMIT)


def over_limit(data: bytes, max_body: int) -> int | None:
    """The limit ``data`` exceeds, or None."""
    limit = PDF_LIMIT if pdf_check.is_pdf(data) else max_body
    return limit if len(data) > limit else None


@dataclass
class VerifyResult:
    valid: bool
    reasons: list[str]
    codes: list[str]
    kind: str  # erasure | audit
    id: str | None = None
    digest: str | None = None
    key_id: str | None = None
    station_id: str | None = None
    station_revoked: bool = False
    stored: bool = False
    payload: dict | None = None
    pdf: bool = False  # a certificate PDF: its attached envelope was checked, and its page against it

    def to_json(self) -> dict:
        # Not dataclasses.asdict: that deep-copies the payload first, for nothing.
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "payload"}


def admit(ctx, request) -> None:
    """Anyone may verify, so each client address gets a bounded rate (429 beyond it)."""
    if ctx.settings.verify_rate <= 0:
        return
    client = request.client.host if request.client else "unknown"
    wait = ctx.verify_limit.take(client)
    if wait:
        raise RateLimited(f"more than {ctx.settings.verify_rate:g} verifications a second from {client}; "
                          f"retry in {wait:.1f} s", wait)


async def verify_off_loop(db: Database, data: bytes) -> VerifyResult:
    """Parsing, signatures and schema in a worker thread: one slow check must not hold up
    every other request of this single-threaded event loop."""
    return await run_in_threadpool(verify_bytes, db, data)


def verify_bytes(db: Database, data: bytes) -> VerifyResult:
    """Check one uploaded file; never raises for a bad certificate, the result says why."""
    if pdf_check.is_pdf(data):
        return verify_pdf(db, data)
    trusted, by_key = stations.trusted_keys(db)
    payload_type = env.ERASURE_TYPE
    try:
        if env.parse_envelope(data).get("payloadType") == env.AUDIT_TYPE:
            payload_type = env.AUDIT_TYPE
    except CertificateError:
        pass  # check_certificate reports it, in the same words as `ardoise verify`
    report = check.check_certificate(data, trusted, payload_type=payload_type)
    station = by_key.get(report.key_id) if report.key_id else None
    payload = report.payload or {}
    ident = payload.get("certificate_id") or payload.get("report_id")
    return VerifyResult(
        valid=report.valid, reasons=report.reasons, codes=report.codes,
        kind="audit" if payload_type == env.AUDIT_TYPE else "erasure", id=ident, digest=report.digest,
        key_id=report.key_id, station_id=station.id if station else None,
        station_revoked=bool(station and station.revoked_at),
        stored=bool(report.valid and queries.is_stored(db, report.digest)), payload=report.payload)


def verify_pdf(db: Database, data: bytes) -> VerifyResult:
    """A certificate PDF: the envelope attached to it against the keys enrolled here (never
    the key the PDF carries: anyone can attach one), then its page against that envelope."""
    trusted, by_key = stations.trusted_keys(db)
    report = pdf_check.check_pdf(data, trusted).report
    station = by_key.get(report.key_id) if report.key_id else None
    payload = report.payload or {}
    return VerifyResult(
        valid=report.valid, reasons=report.reasons, codes=report.codes, kind="erasure",
        id=payload.get("certificate_id"), digest=report.digest, key_id=report.key_id,
        station_id=station.id if station else None, station_revoked=bool(station and station.revoked_at),
        stored=bool(report.valid and queries.is_stored(db, report.digest)), payload=report.payload, pdf=True)
