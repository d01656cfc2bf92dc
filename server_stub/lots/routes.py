"""The lot page's forms: import the donor's inventory, close the lot.

Who may use them is who may run ``lot import`` and ``lot close`` from the collector's
CLI, scoped as the admin routes are (docs/collector.md, roles): someone who manages the
lot's workshop (its admins and managers, the coordinator's, the Basic admin). Anyone else
who sees the lot gets 403; someone who does not see it gets 404, as for a lot that does
not exist. Each form is CSRF-protected like every other (same origin, session token).

A refused form shows the lot page again with the reason (every bad row of an inventory
by its line number); a form that worked redirects to the lot page, so that reloading it
posts nothing twice.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from agent.i18n import T_, localize
from server_stub import csrf, language, pages, queries
from server_stub.accounts import access
from server_stub.errors import Conflict, Forbidden, Malformed, Rejected, TooLarge
from server_stub.lots import inventory, service, wiring
from server_stub.lots.models import OPEN
from server_stub.lots.report import Co2Factor

router = APIRouter(include_in_schema=False)

# The multipart wrapping adds a few hundred bytes around the file itself.
_FORM_OVERHEAD = 16384


async def _managed_lot(request: Request, lot_id: int, *, max_files: int):
    """(principal, lot record, form) of a lot form: logged in, seeing the lot, managing its
    workshop, from our own pages with this session's token."""
    ctx = request.app.state.ctx
    who = access.principal(request)
    lot = service.get_lot(ctx.db, lot_id, who)  # 404 when it is not theirs to see
    csrf.check_same_origin(request)
    if not who.manages(lot.workshop_id):
        raise Forbidden(T_("importing an inventory or closing a lot needs a manager of its workshop"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > inventory.MAX_BYTES + _FORM_OVERHEAD:
        raise TooLarge(T_("the inventory file is larger than {mib} MiB", mib=inventory.MAX_BYTES >> 20))
    form = await request.form(max_files=max_files, max_fields=4)
    csrf.check_form_token(request, ctx.settings.secret_key, form.get("csrf"))
    if lot.status != OPEN:  # a page left open, or a second click: the page has no form any more
        raise Conflict(T_("lot {lot} is closed", lot=lot.name))
    return who, lot, form


def _lot_url(lot, notice: str) -> str:
    return f"/lots/{quote(lot.name, safe='')}?workshop={lot.workshop_id}&notice={notice}"


def _page_with(request: Request, who, lot, status_code: int, **context):
    """The lot page again, with what went wrong (``form_errors``: lines of text)."""
    ctx = request.app.state.ctx
    records = service.visible_lots(ctx.db, who, lot.name, lot.workshop_id)
    s = queries.lot_summary(ctx.db, lot.name, visible=pages.workshop_visible(who, lot.workshop_id), allow_empty=True)
    return pages.render_lot(request, who, s, records, workshop=lot.workshop_id, status_code=status_code, **context)


@router.post("/lot-forms/{lot_id}/import")
async def import_inventory(request: Request, lot_id: int):
    ctx = request.app.state.ctx
    who, lot, form = await _managed_lot(request, lot_id, max_files=1)
    upload = form.get("inventory")
    lang = language.for_request(request)
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _page_with(request, who, lot, 400, form_errors=[
            localize(T_("choose the donor's inventory file (CSV or XLSX) to import"), lang)], form="import")
    data = await upload.read(inventory.MAX_BYTES + 1)
    try:
        await run_in_threadpool(wiring.import_inventory, ctx.db, lot, data, who.actor, source=upload.filename)
    except wiring.InventoryRejected as exc:
        lines = [localize(p.text(), lang) for p in exc.problems]
        summary = localize(T_("{count} bad row(s) in {file}: nothing was imported. Correct them in the "
                              "spreadsheet and import it again.", count=len(exc.problems), file=upload.filename), lang)
        return _page_with(request, who, lot, 422, form_errors=[summary, *lines], form="import")
    except Rejected as exc:  # the file as a whole (not an inventory, too large), or a closed lot
        return _page_with(request, who, lot, exc.http_status, form_errors=[localize(exc.message, lang)],
                          form="import")
    return RedirectResponse(_lot_url(lot, "imported"), status_code=303)


@router.post("/lot-forms/{lot_id}/close")
async def close_lot(request: Request, lot_id: int):
    ctx = request.app.state.ctx
    who, lot, form = await _managed_lot(request, lot_id, max_files=0)
    reason = form.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise Malformed(T_("the reason is text"))
    lang = language.for_request(request)
    try:
        # Everyone allowed here manages the workshop: a manager may close with a reason.
        await run_in_threadpool(wiring.close, ctx.db, lot, who.actor, ctx.receipt_key, reason=reason or None,
                                is_manager=True, co2=Co2Factor.from_settings(ctx.settings))
    except Rejected as exc:
        return _page_with(request, who, lot, exc.http_status, form_errors=[localize(exc.message, lang)],
                          form="close", reason=reason or "")
    return RedirectResponse(_lot_url(lot, "closed"), status_code=303)
