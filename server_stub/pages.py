"""Server-rendered pages (Jinja2). They work without JavaScript; only the dashboard's live
list refreshes itself with a small script (and falls back to a meta refresh)."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from datetime import datetime
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from agent import outcome
from agent.i18n import N_, NC_, T_, localize
from server_stub import auth, csrf, fields, keys, language, lotpdf, queries, stations, verify
from server_stub.accounts import access, events, service
from server_stub.accounts.access import Principal
from server_stub.errors import Forbidden, Malformed, NotFound, Rejected, TooLarge, Unauthorized, Unavailable
from server_stub.lots import service as lot_service
from server_stub.models import Certificate, Station
from server_stub.stations import iso

router = APIRouter(include_in_schema=False)


def _ctx(request: Request):
    return request.app.state.ctx


def _render(request: Request, name: str, who: Principal | None = None, status_code: int = 200,
            **context) -> HTMLResponse:
    """A page; every page carries this browser session's form token (the logout button is
    a form), and a new browser session gets its cookie here."""
    ctx = _ctx(request)
    context.setdefault("admin_enabled", ctx.settings.admin_enabled)
    token, new_session = csrf.session_token(request, ctx.settings.secret_key)
    context.setdefault("csrf", token)
    context["who"] = who
    # The template is rendered inside TemplateResponse(), so within the reader's language.
    # Security headers (CSP, nosniff, framing) are added to every response: server_stub.headers.
    lang = language.for_request(request)
    with language.rendering(lang):
        resp = ctx.templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers["Content-Language"] = lang.code
    resp.headers["Vary"] = "Accept-Language"
    if new_session:
        csrf.set_session_cookie(request, resp, new_session)
    return resp


def login_redirect(request: Request) -> RedirectResponse | None:
    """Where a page asked of nobody sends them once the collector has accounts: the login
    page, then back (the Basic challenge stays for scripts and the bootstrap admin)."""
    if request.headers.get("authorization") or not service.accounts_exist(_ctx(request).db):
        return None
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)


def error_page(request: Request, exc: Rejected) -> HTMLResponse:
    title = {404: N_("Not found"), 401: N_("Login required"), 503: N_("Admin disabled"),
             413: N_("Too large")}.get(exc.http_status, N_("Request refused"))
    lang = language.for_request(request)
    # The API answers the English reason; the page says it in the reader's language when
    # it was written as a T_() text.
    return _render(request, "error.html", status_code=exc.http_status, title=lang.gettext(title),
                   message=" ".join(localize(exc.message, lang).split()))


def _human_bytes(n) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _when(t) -> str:
    if isinstance(t, datetime):
        return t.strftime("%Y-%m-%d %H:%M:%S UTC")
    return t or "—"


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
    from server_stub.lots import report
    templates.env.filters["lot_state"] = lambda c: report.state_label(c, language.current().code)
    templates.env.filters["lot_destination"] = lambda c: report.destination_label(c, language.current().code)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request):
    ctx = _ctx(request)
    who = access.reader(request)
    return _render(request, "dashboard.html", who, board=queries.dashboard(ctx.db, access.certificates(who)),
                   live=ctx.progress.live(access.stations(who)), timeout=ctx.settings.progress_timeout_s)


@router.get("/dashboard/live", response_class=HTMLResponse)
def dashboard_live(request: Request):
    ctx = _ctx(request)
    who = access.reader(request)
    return _render(request, "_live.html", who, live=ctx.progress.live(access.stations(who)),
                   board=queries.dashboard(ctx.db, access.certificates(who)))


@router.get("/certificates", response_class=HTMLResponse)
def certificate_list(request: Request, serial: str = "", lot: str = "", station: str = "", since: str = "",
                     until: str = "", outcome: str = "", page: int = 1):
    ctx = _ctx(request)
    who = access.reader(request)
    visible = access.certificates(who)
    per_page = 50
    page = max(1, min(page, 10**6))
    f = queries.Filters(serial=serial.strip() or None, lot=lot.strip() or None, station=station.strip() or None,
                        since=queries.parse_when(since.strip(), "since"),
                        until=queries.parse_when(until.strip(), "until", end=True), outcome=outcome or None,
                        limit=per_page, offset=(page - 1) * per_page, visible=visible)
    total, rows = queries.search(ctx.db, f)
    q = {"serial": serial, "lot": lot, "station": station, "since": since, "until": until, "outcome": outcome}
    return _render(request, "certificates.html", who, rows=rows, total=total, q=q, page=page,
                   pages=max(1, (total + per_page - 1) // per_page),
                   query="&".join(f"{k}={quote(v)}" for k, v in q.items() if v),
                   stations=stations.all_stations(ctx.db, access.stations(who)), lots=queries.lots(ctx.db, visible))


def _certificate(request: Request, cert_id: str):
    """A certificate the asker may see (404 otherwise, as for one that does not exist)."""
    who = request.state.who = access.reader(request)
    return queries.get_certificate(_ctx(request).db, cert_id, access.certificates(who), access.audits(who))


def _pdf_renderer():
    try:
        from agent.certify.pdf import render_certificate_pdf
    except ImportError:
        raise Unavailable(T_("the PDF renderer (agent.certify.pdf) is not installed")) from None
    return render_certificate_pdf


@router.get("/certificates/{cert_id}.pdf")
def certificate_pdf(request: Request, cert_id: str):
    c = _certificate(request, cert_id)
    with language.rendering(language.for_request(request)):
        data = _pdf_renderer()(c.payload, c.row.digest, c.row.key_id, **keys.pdf_proof(str(request.base_url), c))
    return Response(data, media_type="application/pdf",
                     headers={"Content-Disposition": f'attachment; filename="certificate-{c.row.id}.pdf"'})


@router.get("/certificates/{cert_id}.json")
def certificate_json(request: Request, cert_id: str):
    c = _certificate(request, cert_id)
    return Response(c.row.envelope.encode("utf-8"), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="certificate-{c.row.id}.json"'})


@router.get("/certificates/{cert_id}", response_class=HTMLResponse)
def certificate_page(request: Request, cert_id: str):
    c = _certificate(request, cert_id)
    return _render(request, "certificate.html", request.state.who, c=c, p=c.payload)


@router.get("/audits/{audit_id}.pdf")
def audit_pdf(request: Request, audit_id: str):
    """The machine's report followed by its drives' certificates (the agent's renderer)."""
    ctx = _ctx(request)
    who = access.reader(request)
    try:
        from agent.certify.pdf import render_system_pdf
    except ImportError:
        raise Unavailable(T_("the PDF renderer (agent.certify.pdf) is not installed")) from None
    a = queries.get_audit(ctx.db, audit_id, access.audits(who))
    payloads = [queries.get_certificate(ctx.db, c.id).payload
                for c in queries.certificates_for_audit(ctx.db, a.row, a.serials, access.certificates(who))]
    with language.rendering(language.for_request(request)):
        data = render_system_pdf(a.payload, payloads)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="machine-{_safe_name(a.row.id)}.pdf"'})


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, audit_id: str):
    ctx = _ctx(request)
    who = access.reader(request)
    a = queries.get_audit(ctx.db, audit_id, access.audits(who))
    certificates = queries.certificates_for_audit(ctx.db, a.row, a.serials, access.certificates(who))
    verdict = outcome.machine_verdict(a.payload.get("verdict"), [queries.decision(c).result for c in certificates])
    return _render(request, "audit.html", who, a=a, certificates=certificates, machine_verdict=verdict)


@router.get("/lots", response_class=HTMLResponse)
def lot_list(request: Request):
    ctx = _ctx(request)
    who = access.reader(request)
    return _render(request, "lots.html", who, lots=lot_service.list_lots(ctx.db, who))


@router.get("/lots/{lot:path}")
def lot_page(request: Request, lot: str, format: str = "html", until: str = "",
             workshop: int | None = Query(None, ge=1, lt=2**31), notice: str = ""):
    """One lot; ``?format=csv`` or ``pdf`` exports it. The lot is the whole rest of the path
    (a lot name may hold "/"), so exports are a query parameter, never a suffix that a lot
    named "X.csv" could collide with. ``?until=`` lists only what was received before."""
    ctx = _ctx(request)
    who = access.reader(request)
    records = lot_service.visible_lots(ctx.db, who, lot, workshop)
    visible = workshop_visible(who, workshop)
    if format == "bundle":
        return _lot_bundle(request, lot, records)
    s = queries.lot_summary(ctx.db, lot, until=queries.parse_when(until.strip(), "until", end=True),
                            visible=visible, allow_empty=bool(records))
    if format == "csv":
        return PlainTextResponse(queries.lot_csv(s, language.for_lot(request, lot)), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.csv"'})
    if format == "pdf":
        return Response(lotpdf.render_lot_pdf(s, language.for_lot(request, lot)), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="lot-{_safe_name(lot)}.pdf"'})
    if format != "html":
        raise Malformed(T_("format must be html, csv, pdf or bundle"))
    return render_lot(request, who, s, records, until=until.strip(), workshop=workshop,
                      notice=notice if notice in LOT_NOTICES else None)


def workshop_visible(who: Principal, workshop: int | None):
    """The certificates this principal sees, of one workshop's stations when ``workshop``
    is given (two workshops may each have a lot of a name: ?workshop= shows one of them)."""
    visible = access.certificates(who)
    if workshop is not None:
        mine = Certificate.station_id.in_(select(Station.id).where(Station.org_id == workshop))
        visible = mine if visible is None else (visible & mine)
    return visible


# What the lot page says after a form succeeded (a redirect: reloading it posts nothing).
LOT_NOTICES = ("imported", "closed")


def render_lot(request: Request, who: Principal, s, records, *, until: str = "", workshop: int | None = None,
               status_code: int = 200, **context) -> HTMLResponse:
    """The lot page; the import and close forms show to whoever manages the lot's workshop
    while it is open (server_stub.lots.routes handles them)."""
    ctx = _ctx(request)
    reconciled = _reconciled(ctx.db, records)
    record = records[0] if len(records) == 1 else None
    manages = record is not None and record.status == "open" and who.manages(record.workshop_id)
    return _render(request, "lot.html", who, status_code=status_code, s=s, until=until,
                   records=_lot_records(ctx.db, records), workshop=workshop, reconciled=reconciled,
                   record=record, manages=manages, co2_source=ctx.settings.co2_source,
                   unresolved=len(reconciled["unresolved"]) if reconciled else 0, **context)


def _one_record(records):
    if not records:
        raise NotFound(T_("no such lot"))  # or one the asker may not see: the same answer
    if len(records) > 1:
        raise Malformed(T_("several workshops have a lot of this name: add ?workshop="))
    return records[0]


def _lot_bundle(request: Request, lot: str, records) -> StreamingResponse:
    """The donor's bundle of a closed lot (docs/collector-api.md): whoever sees the lot
    page gets it; the ZIP is streamed as it is written."""
    from server_stub.lots import wiring

    record = _one_record(records)
    name = f"lot-{_safe_name(lot)}.zip"
    ctx = _ctx(request)
    chunks = wiring.stream(ctx.db, record, ctx.receipt_key, base_url=str(request.base_url), zipname=name,
                           timezone=ctx.settings.timezone)
    first = next(chunks)  # refusals (an open lot) before the 200 goes out
    return StreamingResponse(itertools.chain([first], chunks), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


# The codes the lot page shows as words (pgettext with this context in lot.html); a
# device's state and destination are worded by server_stub.lots.report, as in the report.
LOT_WORDS = (NC_("lot status", "open"), NC_("lot status", "closed"))


def _reconciled(db, records) -> dict | None:
    """The declared devices and their states, when the lot has one record with an inventory."""
    from server_stub.lots import report, wiring

    if len(records) != 1:
        return None
    if records[0].report_envelope:
        return _as_reported(records[0].report_envelope)
    recon = wiring.reconciliation(db, records[0])
    if not recon.lines:
        return None
    devices = [report._device(line) for line in recon.lines]
    return {"lines": recon.lines, "extras": recon.extras, "counts": recon.counts,
            "reen": report.reen_figures(devices), "unresolved": recon.unresolved}


def _as_reported(report_envelope: str) -> dict:
    """A closed lot's reconciliation as its signed report states it: what was closed is
    what the page shows, and reading one JSON document is much cheaper than decoding the
    lot's 5,000 envelopes again."""
    from types import SimpleNamespace

    from server_stub.lots.reconcile import UNRESOLVED, DeviceState

    rep = json.loads(base64.b64decode(json.loads(report_envelope)["payload"]))
    lines = [SimpleNamespace(declared=SimpleNamespace(line=d["line"], model=d["model"]), identifier=d["identifier"],
                             state=d["state"], destination=d["destination"]) for d in rep["devices"]]
    states = Counter(d["state"] for d in rep["devices"])
    unresolved = {str(s) for s in UNRESOLVED}
    return {"lines": lines, "extras": rep["extras"], "reen": rep["reen"],
            "counts": lambda: {str(k): states.get(str(k), 0) for k in DeviceState},
            "unresolved": [line for line in lines if line.state in unresolved]}


def _lot_records(db, records) -> list[dict]:
    """The lot records of this name the asker sees, with their organisations' names."""
    names = {o.id: o.name for o in service.organisations(db)}
    return [{"workshop": names.get(r.workshop_id), "donor": names.get(r.donor_id), "status": r.status,
             "language": r.language, "received_on": r.received_on, "closed_at": r.closed_at,
             "closed_by": r.closed_by, "close_reason": r.close_reason} for r in records]


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:80] or "lot"


# ----------------------------------------------------------------------------- verify (public)

@router.get("/verify", response_class=HTMLResponse)
def verify_form(request: Request):
    return _render(request, "verify.html", _maybe_who(request), result=None)


def _maybe_who(request: Request) -> Principal:
    """Who asks a public page: a wrong or locked-out login there is simply nobody (the
    page stays public), never a refusal."""
    try:
        return access.principal(request, required=False)
    except Rejected:
        return Principal("anonymous", auth.client_address(request))


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
    # The answer is about the file uploaded; the stored certificate is linked only for
    # someone allowed to see it.
    who = _maybe_who(request)
    return _render(request, "verify.html", who, result=result, filename=upload.filename or "certificate",
                   stored_visible=result.stored and _sees_digest(ctx.db, who, result.digest))


def _sees_digest(db, who: Principal, digest: str | None) -> bool:
    if not digest or not (who.logged_in or who.open_reading):
        return False
    q = select(Certificate.id).where(Certificate.digest == digest)
    if (cond := access.certificates(who)) is not None:
        q = q.where(cond)
    with db.session() as s:
        return s.scalar(q) is not None


# ----------------------------------------------------------------------------- admin

@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request):
    return _admin_page(request, access.admin(request), new_token=None)


def _admin_page(request: Request, who: Principal, **context) -> HTMLResponse:
    """The admin page: the stations and workshops this principal manages."""
    ctx = _ctx(request)
    managed = who.managed_workshops()
    workshops = [o for o in service.organisations(ctx.db, "workshop") if managed is None or o.id in managed]
    visible = None if managed is None else Station.org_id.in_(managed)
    return _render(request, "admin.html", who, stations=stations.list_stations(ctx.db, visible),
                   workshops=workshops, donors=service.organisations(ctx.db, "donor"), **context)


async def _admin_form(request: Request) -> tuple[Principal, object]:
    """An admin form post: logged in, from our own pages, with this session's token."""
    ctx = _ctx(request)
    who = access.admin(request)
    csrf.check_same_origin(request)
    form = await request.form(max_files=0, max_fields=8)
    csrf.check_form_token(request, ctx.settings.secret_key, form.get("csrf"))
    return who, form


@router.post("/admin/tokens", response_class=HTMLResponse)
async def admin_token(request: Request):
    ctx = _ctx(request)
    who, form = await _admin_form(request)
    lot = str(form.get("lot") or "").strip() or None
    if lot is not None and (problem := fields.lot_problem(lot)):
        raise Malformed(T_("lot: {problem}", problem=problem))
    workshop = stations.workshop_for(ctx.db, str(form.get("workshop") or "") or None, who.managed_workshops())
    t = stations.create_token(ctx.db, lot, ctx.settings.token_ttl_hours, workshop_id=workshop, actor=who.actor)
    return _admin_page(request, who, new_token=t)


@router.post("/admin/stations/{station_id}/revoke", response_class=HTMLResponse)
async def admin_revoke(request: Request, station_id: str):
    ctx = _ctx(request)
    who, _ = await _admin_form(request)
    stations.revoke(ctx.db, station_id, who.actor, who.managed_workshops())
    message = language.for_request(request).gettext("Station {station} revoked.").format(station=station_id)
    return _admin_page(request, who, new_token=None, message=message)


@router.post("/admin/lots", response_class=HTMLResponse)
async def admin_lot(request: Request):
    from datetime import date

    ctx = _ctx(request)
    who, form = await _admin_form(request)
    name = str(form.get("name") or "").strip()
    received = None
    if form.get("received_on"):
        try:
            received = date.fromisoformat(str(form.get("received_on")))
        except ValueError:
            raise Malformed(T_("the received date must be a date, YYYY-MM-DD")) from None
    workshop = stations.workshop_for(ctx.db, str(form.get("workshop") or "") or None, who.managed_workshops())
    donor = str(form.get("donor") or "")
    lot = lot_service.create_lot(ctx.db, name, workshop, who.actor, donor=int(donor) if donor.isdigit() else None,
                                 language=str(form.get("language") or "fr"), received_on=received, who=who)
    message = language.for_request(request).gettext("Lot {lot} created.").format(lot=lot.name)
    return _admin_page(request, who, new_token=None, message=message)


@router.get("/admin/events", response_class=HTMLResponse)
def admin_events(request: Request):
    """The audit log, to admins: the whole of it for collector-wide admins, else their
    organisations' part."""
    ctx = _ctx(request)
    who = access.admin(request)
    if not who.is_admin():
        raise Forbidden(T_("the audit log is shown to admins"))
    names = {o.id: o.name for o in service.organisations(ctx.db)}
    return _render(request, "events.html", who, events=events.recent(ctx.db, who.event_scope()), orgs=names)


# ----------------------------------------------------------------------------- login

def _safe_next(target: str) -> str:
    """Only a path of this collector: never another site (an open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not target.isprintable():
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/"):
    return _render(request, "login.html", _maybe_who(request), next=_safe_next(next),
                   error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    ctx = _ctx(request)
    csrf.check_same_origin(request)
    form = await request.form(max_files=0, max_fields=5)
    csrf.check_form_token(request, ctx.settings.secret_key, form.get("csrf"))
    email = str(form.get("email") or "").strip().lower()[:254]
    password = str(form.get("password") or "")
    target = _safe_next(str(form.get("next") or "/"))
    client = auth.client_address(request)
    guard = ctx.login_guard
    account = "user:" + email
    # Locked out: refused before the password is looked at (server_stub.lockout).
    guard.check(client, account, noun="passwords", account_name=f"the account {email}")
    try:
        if not (email.isprintable() and stations._is_text(email) and stations._is_text(password)):
            raise Unauthorized(T_("wrong email or password"))  # never reaches the database or argon2
        user = await run_in_threadpool(service.check_password, ctx.db, email, password)
    except Unauthorized as exc:
        guard.failed(client, account)
        error = " ".join(localize(exc.message, language.for_request(request)).split())
        return _render(request, "login.html", None, 401, next=target, error=error, email=email)
    guard.succeeded(client)
    token = service.open_session(ctx.db, user, events.Actor(user.email, client))
    resp = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    resp.set_cookie(access.LOGIN_COOKIE, token, max_age=service.SESSION_HOURS * 3600, httponly=True,
                    samesite="strict", secure=secure, path="/")
    # A new form-token session too: a token seen before the login is worth nothing after it.
    csrf.set_session_cookie(request, resp, csrf.new_session_id())
    return resp


@router.post("/logout")
async def logout(request: Request):
    ctx = _ctx(request)
    csrf.check_same_origin(request)
    form = await request.form(max_files=0, max_fields=3)
    csrf.check_form_token(request, ctx.settings.secret_key, form.get("csrf"))
    token = request.cookies.get(access.LOGIN_COOKIE)
    user = service.session_user(ctx.db, token) if token else None
    if user is not None:
        service.close_session(ctx.db, token, events.Actor(user.email, auth.client_address(request)))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(access.LOGIN_COOKIE, path="/")
    csrf.set_session_cookie(request, resp, csrf.new_session_id())
    return resp
