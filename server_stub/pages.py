"""Server-rendered pages (Jinja2). They work without JavaScript; only the dashboard's live
list refreshes itself with a small script (and falls back to a meta refresh)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from agent.i18n import N_, T_, localize
from server_stub import auth, language, lotpdf, queries, stations, verify
from server_stub.errors import Malformed, Rejected, TooLarge, Unavailable
from server_stub.stations import iso

router = APIRouter(include_in_schema=False)


def _ctx(request: Request):
    return request.app.state.ctx


def _render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    ctx = _ctx(request)
    context.setdefault("admin_enabled", ctx.settings.admin_enabled)
    # The template is rendered inside TemplateResponse(), so within the reader's language.
    with language.rendering(language.for_request(request)):
        resp = ctx.templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers["Content-Language"] = language.for_request(request).code
    resp.headers["Vary"] = "Accept-Language"
    # The pages show text that stations and uploaders wrote: no inline script may ever run,
    # and no other site may frame the admin forms.
    resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def error_page(request: Request, exc: Rejected) -> HTMLResponse:
    title = {404: N_("Not found"), 401: N_("Login required"), 503: N_("Admin disabled"),
             413: N_("Too large")}.get(exc.http_status, N_("Request refused"))
    lang = language.for_request(request)
    # The API answers the English reason; the page says it in the reader's language when
    # it was written as a T_() text.
    return _render(request, "error.html", exc.http_status, title=lang.gettext(title),
                   message=" ".join(localize(exc.message, lang).split()))


def install_filters(templates) -> None:
    # when, bytes, category, outcome and the gettext callables follow the reader's language.
    language.install(templates.env)
    templates.env.filters["urlpart"] = lambda s: quote(str(s), safe="")
    templates.env.globals["iso"] = iso


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return _render(request, "dashboard.html", board=queries.dashboard(ctx.db), live=ctx.progress.live(),
                   timeout=ctx.settings.progress_timeout_s)


@router.get("/dashboard/live", response_class=HTMLResponse)
def dashboard_live(request: Request):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return _render(request, "_live.html", live=ctx.progress.live(), board=queries.dashboard(ctx.db))


@router.get("/certificates", response_class=HTMLResponse)
def certificate_list(request: Request, serial: str = "", lot: str = "", station: str = "", since: str = "",
                     until: str = "", outcome: str = "", page: int = 1):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    per_page = 50
    page = max(1, min(page, 10**6))
    f = queries.Filters(serial=serial.strip() or None, lot=lot.strip() or None, station=station.strip() or None,
                        since=queries.parse_when(since.strip(), "since"),
                        until=queries.parse_when(until.strip(), "until", end=True), outcome=outcome or None,
                        limit=per_page, offset=(page - 1) * per_page)
    total, rows = queries.search(ctx.db, f)
    q = {"serial": serial, "lot": lot, "station": station, "since": since, "until": until, "outcome": outcome}
    return _render(request, "certificates.html", rows=rows, total=total, q=q, page=page,
                   pages=max(1, (total + per_page - 1) // per_page),
                   query="&".join(f"{k}={quote(v)}" for k, v in q.items() if v),
                   stations=stations.all_stations(ctx.db), lots=queries.lots(ctx.db))


def _pdf_renderer():
    try:
        from agent.certify.pdf import render_certificate_pdf
    except ImportError:
        raise Unavailable("the PDF renderer (agent.certify.pdf) is not installed") from None
    return render_certificate_pdf


@router.get("/certificates/{cert_id}.pdf")
def certificate_pdf(request: Request, cert_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    c = queries.get_certificate(ctx.db, cert_id)
    with language.rendering(language.for_request(request)):
        data = _pdf_renderer()(c.payload, c.row.digest, c.row.key_id)
    return Response(data, media_type="application/pdf",
                     headers={"Content-Disposition": f'attachment; filename="certificate-{c.row.id}.pdf"'})


@router.get("/certificates/{cert_id}.json")
def certificate_json(request: Request, cert_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    c = queries.get_certificate(ctx.db, cert_id)
    return Response(c.row.envelope.encode("utf-8"), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="certificate-{c.row.id}.json"'})


@router.get("/certificates/{cert_id}", response_class=HTMLResponse)
def certificate_page(request: Request, cert_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    c = queries.get_certificate(ctx.db, cert_id)
    return _render(request, "certificate.html", c=c, p=c.payload)


@router.get("/audits/{audit_id}.pdf")
def audit_pdf(request: Request, audit_id: str):
    """The machine's report followed by its drives' certificates (the agent's renderer)."""
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    try:
        from agent.certify.pdf import render_system_pdf
    except ImportError:
        raise Unavailable("the PDF renderer (agent.certify.pdf) is not installed") from None
    a = queries.get_audit(ctx.db, audit_id)
    payloads = [queries.get_certificate(ctx.db, c.id).payload
                for c in queries.certificates_for_serials(ctx.db, a.serials)]
    with language.rendering(language.for_request(request)):
        data = render_system_pdf(a.payload, payloads)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="machine-{_safe_name(a.row.id)}.pdf"'})


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, audit_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    a = queries.get_audit(ctx.db, audit_id)
    return _render(request, "audit.html", a=a, certificates=queries.certificates_for_serials(ctx.db, a.serials))


@router.get("/lots", response_class=HTMLResponse)
def lot_list(request: Request):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return _render(request, "lots.html", lots=queries.lots(ctx.db))


@router.get("/lots/{lot}.csv")
def lot_csv(request: Request, lot: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    text = queries.lot_csv(queries.lot_summary(ctx.db, lot), language.for_lot(request, lot))
    return PlainTextResponse(text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.csv"'})


@router.get("/lots/{lot}.pdf")
def lot_pdf(request: Request, lot: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    data = lotpdf.render_lot_pdf(queries.lot_summary(ctx.db, lot), language.for_lot(request, lot))
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.pdf"'})


@router.get("/lots/{lot}", response_class=HTMLResponse)
def lot_page(request: Request, lot: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return _render(request, "lot.html", s=queries.lot_summary(ctx.db, lot))


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:80] or "lot"


# ----------------------------------------------------------------------------- verify (public)

@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request):
    return _render(request, "verify.html", result=None)


@router.post("/verify", response_class=HTMLResponse)
async def verify_upload(request: Request):
    ctx = _ctx(request)
    limit = ctx.settings.max_body
    declared = request.headers.get("content-length", "")
    # The multipart wrapping adds a few hundred bytes around the file itself.
    if declared.isdigit() and int(declared) > limit + 16384:
        raise TooLarge(T_("the file is over the {limit}-byte limit", limit=limit))
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("certificate")
    if upload is None or isinstance(upload, str):
        raise Malformed(T_("choose a certificate file (.json) to check"))
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(T_("the file is over the {limit}-byte limit", limit=limit))
    result = verify.verify_bytes(ctx.db, data)
    return _render(request, "verify.html", result=result, filename=upload.filename or "certificate")


# ----------------------------------------------------------------------------- admin

@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request):
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    return _render(request, "admin.html", stations=stations.list_stations(ctx.db), new_token=None,
                   csrf=auth.csrf_token(ctx.settings))


@router.post("/admin/tokens", response_class=HTMLResponse)
async def admin_token(request: Request):
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    form = await request.form(max_files=0, max_fields=5)
    auth.check_csrf(ctx.settings, form.get("csrf"))
    lot = str(form.get("lot") or "").strip()[:200] or None
    t = stations.create_token(ctx.db, lot, ctx.settings.token_ttl_hours)
    return _render(request, "admin.html", stations=stations.list_stations(ctx.db), new_token=t,
                   csrf=auth.csrf_token(ctx.settings))


@router.post("/admin/stations/{station_id}/revoke", response_class=HTMLResponse)
async def admin_revoke(request: Request, station_id: str):
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    form = await request.form(max_files=0, max_fields=5)
    auth.check_csrf(ctx.settings, form.get("csrf"))
    stations.revoke(ctx.db, station_id)
    return _render(request, "admin.html", stations=stations.list_stations(ctx.db), new_token=None,
                   csrf=auth.csrf_token(ctx.settings),
                   message=language.for_request(request).gettext("Station {station} revoked.").format(station=station_id))


