"""The label routes: one machine's label, or a whole lot's in one file.

Who may print a label is who may see the machine's page: ``readable_audit`` is the one
place that checks it, with the audit page's own rule (``accounts.access``: a workshop
prints its own machines' labels, a donor those of its lots).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from server_stub import queries
from server_stub.accounts import access
from server_stub.errors import Malformed, NotFound
from server_stub.labels import words
from server_stub.labels.data import LabelData, audits_of_lot, label_data
from server_stub.labels.pdf import label_pdf
from server_stub.labels.sizes import size_of
from server_stub.labels.zpl import label_zpl

router = APIRouter(include_in_schema=False)

# A lot's labels are one request: a print run of a few thousand stays under a minute.
MAX_LABELS = 2000


def readable_audit(request: Request, audit_id: str) -> queries.StoredAudit:
    ctx = request.app.state.ctx
    return queries.get_audit(ctx.db, audit_id, access.audits(access.reader(request)))


def _label_of(request: Request, audit: queries.StoredAudit) -> LabelData:
    db = request.app.state.ctx.db
    visible = access.certificates(access.reader(request))
    # The QR code opens the machine's page on this collector, as the browser reached it.
    return label_data(audit, queries.certificates_for_audit(db, audit.row, audit.serials, visible),
                      str(request.base_url))


def _answer(labels: list[LabelData], size: str, format: str, language: str, name: str) -> Response:
    stock = size_of(size)
    words.check_language(language)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:80] or "labels"
    if format == "pdf":
        return Response(label_pdf(labels, stock, language), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{safe}-{stock.code}.pdf"'})
    if format == "zpl":
        return Response(label_zpl(labels, stock, language).encode("utf-8"), media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{safe}-{stock.code}.zpl"'})
    raise Malformed("format must be pdf or zpl")


@router.get("/audits/{audit_id}/label")
def machine_label(request: Request, audit_id: str, size: str = "62mm", format: str = "pdf", language: str = "fr"):
    audit = readable_audit(request, audit_id)
    return _answer([_label_of(request, audit)], size, format, language, f"label-{audit.row.id}")


@router.get("/labels")
def lot_labels(request: Request, lot: str = "", size: str = "62mm", format: str = "pdf", language: str = "fr"):
    """Every machine of a lot, one label each, in one file (``/lots/{lot}`` takes the whole
    rest of its path, so the lot is a query parameter here)."""
    ctx = request.app.state.ctx
    access.reader(request)
    lot = lot.strip()
    if not lot:
        raise Malformed("lot is required: /labels?lot=LOT")
    size_of(size), words.check_language(language)  # a bad parameter is refused before the work
    ids = audits_of_lot(ctx.db, lot)
    if not ids:
        raise NotFound(f"no audited machine in lot {lot}")
    if len(ids) > MAX_LABELS:
        raise Malformed(f"lot {lot} has {len(ids)} machines; labels are printed {MAX_LABELS} at most at a time")
    labels = []
    for i in ids:
        try:
            labels.append(_label_of(request, readable_audit(request, i)))
        except NotFound:
            continue  # another organisation's machine that shares the lot's name
    if not labels:
        raise NotFound(f"no audited machine in lot {lot}")
    return _answer(labels, size, format, language, f"labels-{lot}")
