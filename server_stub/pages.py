"""Server-rendered pages (Jinja2). They work without JavaScript; only the dashboard's live
list refreshes itself with a small script (and falls back to a meta refresh)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from agent import outcome
from agent.i18n import N_, T_, localize
from server_stub import auth, csrf, fields, keys, language, lotpdf, queries, stations, verify
from server_stub.errors import Malformed, Rejected, TooLarge, Unavailable
from server_stub.stations import iso

router = APIRouter(include_in_schema=False)


def _ctx(request: Request):
    return request.app.state.ctx


def _render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    ctx = _ctx(request)
    context.setdefault("admin_enabled", ctx.settings.admin_enabled)
    # The template is rendered inside TemplateResponse(), so within the reader's language.
    # Security headers (CSP, nosniff, framing) are added to every response: server_stub.headers.
    lang = language.for_request(request)
    with language.rendering(lang):
        resp = ctx.templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers["Content-Language"] = lang.code
    resp.headers["Vary"] = "Accept-Language"
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
    # Every page words a drive's fate through the outcome table (agent/outcome.py), never its own.
    templates.env.filters["decision"] = queries.decision
    templates.env.filters["advice"] = lambda c: outcome.advice(queries.decision(c))
    templates.env.filters["destination"] = outcome.describe_destination
    templates.env.filters["category_text"] = outcome.describe_category
    templates.env.filters["machine_text"] = outcome.describe_machine


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
        raise Unavailable(T_("the PDF renderer (agent.certify.pdf) is not installed")) from None
    return render_certificate_pdf


@router.get("/certificates/{cert_id}.pdf")
def certificate_pdf(request: Request, cert_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    c = queries.get_certificate(ctx.db, cert_id)
    with language.rendering(language.for_request(request)):
        data = _pdf_renderer()(c.payload, c.row.digest, c.row.key_id, **keys.pdf_proof(str(request.base_url), c))
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
        raise Unavailable(T_("the PDF renderer (agent.certify.pdf) is not installed")) from None
    a = queries.get_audit(ctx.db, audit_id)
    payloads = [queries.get_certificate(ctx.db, c.id).payload
                for c in queries.certificates_for_audit(ctx.db, a.row, a.serials)]
    with language.rendering(language.for_request(request)):
        data = render_system_pdf(a.payload, payloads)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="machine-{_safe_name(a.row.id)}.pdf"'})


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, audit_id: str):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    a = queries.get_audit(ctx.db, audit_id)
    certificates = queries.certificates_for_audit(ctx.db, a.row, a.serials)
    verdict = outcome.machine_verdict(a.payload.get("verdict"), [queries.decision(c).result for c in certificates])
    return _render(request, "audit.html", a=a, certificates=certificates, machine_verdict=verdict)


@router.get("/lots", response_class=HTMLResponse)
def lot_list(request: Request):
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return _render(request, "lots.html", lots=queries.lots(ctx.db))


@router.get("/lots/{lot:path}")
def lot_page(request: Request, lot: str, format: str = "html", until: str = ""):
    """One lot; ``?format=csv`` or ``pdf`` exports it. The lot is the whole rest of the path
    (a lot name may hold "/"), so exports are a query parameter, never a suffix that a lot
    named "X.csv" could collide with. ``?until=`` lists only what was received before."""
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    s = queries.lot_summary(ctx.db, lot, until=queries.parse_when(until.strip(), "until", end=True))
    if format == "csv":
        return PlainTextResponse(queries.lot_csv(s, language.for_lot(request, lot)), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.csv"'})
    if format == "pdf":
        return Response(lotpdf.render_lot_pdf(s, language.for_lot(request, lot)), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.pdf"'})
    if format != "html":
        raise Malformed(T_("format must be html, csv or pdf"))
    return _render(request, "lot.html", s=s, until=until.strip())


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:80] or "lot"


# ----------------------------------------------------------------------------- verify (public)

@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request):
    return _render(request, "verify.html", result=None)


@router.post("/verify", response_class=HTMLResponse)
async def verify_upload(request: Request):
    ctx = _ctx(request)
    verify.admit(ctx, request)
    limit = verify.upload_limit(ctx.settings.max_body)
    declared = request.headers.get("content-length", "")
    # The multipart wrapping adds a few hundred bytes around the file itself.
    if declared.isdigit() and int(declared) > limit + 16384:
        raise TooLarge(T_("the file is over the {limit}-byte limit", limit=limit))
    form = await request.form(max_files=1, max_fields=5)
    upload = form.get("certificate")
    if upload is None or isinstance(upload, str):
        raise Malformed(T_("choose a certificate file (.json or .pdf) to check"))
    data = await upload.read(limit + 1)
    exceeded = verify.over_limit(data, ctx.settings.max_body)
    if exceeded:
        raise TooLarge(T_("the file is over the {limit}-byte limit", limit=exceeded))
    result = await verify.verify_off_loop(ctx.db, data)
    return _render(request, "verify.html", result=result, filename=upload.filename or "certificate")


# ----------------------------------------------------------------------------- admin

@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request):
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    return _admin_page(request, new_token=None)


def _admin_page(request: Request, **context) -> HTMLResponse:
    """The admin page with this browser session's form token (a new session gets a cookie)."""
    ctx = _ctx(request)
    token, new_session = csrf.session_token(request, ctx.settings.secret_key)
    resp = _render(request, "admin.html", stations=stations.list_stations(ctx.db), csrf=token, **context)
    if new_session:
        csrf.set_session_cookie(request, resp, new_session)
    return resp


async def _admin_form(request: Request):
    """An admin form post: logged in, from our own pages, with this session's token."""
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    csrf.check_same_origin(request)
    form = await request.form(max_files=0, max_fields=5)
    csrf.check_form_token(request, ctx.settings.secret_key, form.get("csrf"))
    return form


@router.post("/admin/tokens", response_class=HTMLResponse)
async def admin_token(request: Request):
    ctx = _ctx(request)
    form = await _admin_form(request)
    lot = str(form.get("lot") or "").strip() or None
    if lot is not None and (problem := fields.lot_problem(lot)):
        raise Malformed(T_("lot: {problem}", problem=problem))
    t = stations.create_token(ctx.db, lot, ctx.settings.token_ttl_hours)
    return _admin_page(request, new_token=t)


@router.post("/admin/stations/{station_id}/revoke", response_class=HTMLResponse)
async def admin_revoke(request: Request, station_id: str):
    ctx = _ctx(request)
    await _admin_form(request)
    stations.revoke(ctx.db, station_id)
    message = language.for_request(request).gettext("Station {station} revoked.").format(station=station_id)
    return _admin_page(request, new_token=None, message=message)
