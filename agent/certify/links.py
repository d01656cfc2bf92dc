"""Where a record lives at the collector, and what a QR code says about it.

The QR code on a certificate PDF and on the final screen is for a phone: with a collector
configured it opens that record's page there (docs/collector-api.md §5); without one there
is no page to open, so it carries the id and the digest, enough to find and match the JSON.
"""

from __future__ import annotations

from urllib.parse import quote


def certificate_url(collector_url: str, certificate_id: str) -> str:
    return f"{collector_url.rstrip('/')}/certificates/{quote(certificate_id, safe='')}"


def audit_url(collector_url: str, report_id: str) -> str:
    return f"{collector_url.rstrip('/')}/audits/{quote(report_id, safe='')}"


def id_and_digest(kind: str, ident: str, digest: str | None) -> str:
    return f"ardoise-{kind}:{ident}" + (f";sha256={digest}" if digest else "")


def certificate_qr(collector_url: str | None, certificate_id: str, digest: str) -> str:
    if collector_url:
        return certificate_url(collector_url, certificate_id)
    return id_and_digest("certificate", certificate_id, digest)


def audit_qr(collector_url: str | None, report_id: str, digest: str | None) -> str:
    if collector_url:
        return audit_url(collector_url, report_id)
    return id_and_digest("audit", report_id, digest)


def report_qr(config, report_id: str, envelope: bytes) -> str:
    """The final screen's QR code for a machine's signed audit report (``envelope`` bytes)."""
    from agent.certify.envelope import envelope_digest
    from agent.errors import CertificateError

    try:
        digest = envelope_digest(envelope)
    except CertificateError:
        digest = None  # only the id then; the report itself is on the stick
    return audit_qr(getattr(getattr(config, "collector", None), "url", None), report_id, digest)
