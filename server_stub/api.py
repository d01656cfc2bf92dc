"""The JSON API of docs/collector-api.md (stations, certificates, audits, progress, queries)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent.certify import envelope as env
from server_stub import csrf, enrollproof, fields, ingest, queries, receipts, stations, verify
from server_stub.accounts import access, events
from server_stub.lots import service as lot_service
from server_stub.models import Station
from server_stub.errors import Forbidden, Malformed
from server_stub.httpio import answer, json_object, read_body
from server_stub.progress import parse_items
from server_stub.settings import SMALL_BODY

router = APIRouter()

REJECTION = {"description": "rejected; nothing stored", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"status": {"type": "string"}, "id": {"type": ["string", "null"]},
                                     "reason": {"type": "string"}}}}}}
ENVELOPE_SCHEMA = {
    "type": "object",
    "required": ["payloadType", "payload", "signatures"],
    "properties": {
        "payloadType": {"type": "string", "enum": [env.ERASURE_TYPE, env.AUDIT_TYPE]},
        "payload": {"type": "string", "description": "base64 of the payload JSON"},
        "signatures": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["sig"],
            "properties": {"keyid": {"type": "string"}, "sig": {"type": "string"}}}},
    },
}
BEARER = [{"stationBearer": []}]
READERS = [{"session": []}, {"adminBasic": []}, {}]
ADMINS = [{"session": []}, {"adminBasic": []}]
WHO_READS = ("\n\n**Who:** a person logged in sees what their organisations see (coordinator: everything; "
             "workshop: its stations' certificates; donor: its lots'); the Basic admin sees everything; nobody, "
             "only on a collector without accounts that was not started with --require-login. What the asker may "
             "not see answers 404.")
WHO_MANAGES = ("\n\n**Who:** the Basic admin; a coordinator's admins and managers (any workshop); a workshop's "
               "admins and managers (their workshop only; other stations answer 404).")
INLINE_BODY = 32 << 10  # a certificate is ~6 KiB; audit reports tens of KiB go to a thread


def _ctx(request: Request):
    return request.app.state.ctx


def _body_doc(schema: dict, security=None) -> dict:
    doc = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
    if security is not None:
        doc["security"] = security
    return doc


UPLOAD_RESPONSES = {
    201: {"description": "stored"}, 200: {"description": "duplicate: already stored, no second row"},
    400: REJECTION, 401: REJECTION, 413: REJECTION, 422: REJECTION,
}


@router.post("/api/v1/stations/challenge", tags=["stations"], responses={200: {"description": "a fresh challenge"}})
def enrollment_challenge(request: Request) -> JSONResponse:
    """A challenge for the station to sign with its private key when it enrolls.

    **Who:** anyone (it proves nothing by itself)."""
    return JSONResponse({"status": "challenge", "challenge": enrollproof.new_challenge(_ctx(request).settings.secret_key),
                         "expires_in": enrollproof.CHALLENGE_TTL_S}, headers={"Cache-Control": "no-store"})


@router.post("/api/v1/stations", status_code=201, tags=["stations"],
             responses={200: {"description": "re-enrolled: fresh bearer"}, 400: REJECTION, 401: REJECTION,
                        403: REJECTION, 409: REJECTION, 413: REJECTION, 415: REJECTION, 422: REJECTION},
             openapi_extra=_body_doc({"type": "object", "required": ["token", "public_key", "challenge", "signature"],
                                      "properties": {
                 "token": {"type": "string"}, "public_key": {"type": "string"}, "name": {"type": "string"},
                 "key_id": {"type": "string"}, "challenge": {"type": "string"}, "signature": {"type": "string"},
                 "macs": {"type": "array", "items": {"type": "string"}, "maxItems": 16}}}))
async def enroll(request: Request) -> JSONResponse:
    """Enroll a station's Ed25519 public key with a one-time enrollment token, proving
    possession of the private key by signing a challenge. The station belongs to the
    token's workshop.

    **Who:** the holder of an enrollment token and of the station's private key."""
    ctx = _ctx(request)
    csrf.require_json(request)
    body = json_object(await read_body(request, SMALL_BODY))
    token, pem, name, kid, challenge, signature = (
        body.get(k) for k in ("token", "public_key", "name", "key_id", "challenge", "signature"))
    for field_name, value, required in (("token", token, True), ("public_key", pem, True),
                                        ("name", name, False), ("key_id", kid, False)):
        if (required and value is None) or (value is not None and not isinstance(value, str)):
            raise Malformed(f"{field_name} must be a string")
        if value is not None and not _is_unicode(value):
            raise Malformed(f"{field_name} is not valid Unicode (lone surrogate)")
    macs = body.get("macs", [])
    if not isinstance(macs, list) or len(macs) > 16 or not all(isinstance(m, str) and len(m) <= 32 for m in macs):
        raise Malformed("macs must be a list of at most 16 MAC addresses")
    if not isinstance(challenge, str) or not isinstance(signature, str):
        raise Malformed("enrollment needs challenge and signature: sign a challenge from "
                        "POST /api/v1/stations/challenge with the station key (update the agent)")

    def proof(public_key, key_id: str) -> None:
        enrollproof.check(ctx.settings.secret_key, challenge, signature, token, public_key, key_id)

    e = stations.enroll(ctx.db, token, pem, name, kid, proof=proof, macs=macs)
    return JSONResponse({"status": "enrolled" if e.created else "re-enrolled", "station_id": e.station_id,
                         "key_id": e.key_id, "bearer": e.bearer, "lot": e.lot},
                        status_code=201 if e.created else 200)


def _is_unicode(text: str) -> bool:
    """JSON may carry lone surrogates (\\ud800) that no database can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def _upload(request: Request, only: str | None) -> JSONResponse:
    ctx = _ctx(request)
    body = await read_body(request, ctx.settings.max_body)  # 413 comes first
    authorization = request.headers.get("authorization")

    def receive() -> ingest.Ingested:
        station = stations.authenticate(ctx.db, authorization)
        return ingest.ingest(ctx.db, station, body, only=only)

    if ctx.db.is_sqlite and len(body) <= INLINE_BODY:
        # SQLite has one writer and no network: checking and inserting right here, start to
        # end without yielding, is cheaper than a thread hop, and never leaves two of this
        # process's transactions waiting on each other. Only for bodies of a certificate's
        # size: a large one (up to the 1 MiB limit) takes tens of milliseconds to check, and
        # must not hold up the event loop meanwhile (the write lock serializes the insert).
        got = receive()
    else:
        # PostgreSQL: a commit waits for the WAL flush; in a thread, other uploads proceed
        # meanwhile and their commits share the flush.
        async with ctx.upload_slots:
            got = await run_in_threadpool(receive)
    if got.created and got.kind == ingest.ERASURE and ctx.pdfs is not None:
        ctx.pdfs.offer(got.id, str(request.base_url))  # its PDF, rendered when the collector is idle
    receipt = receipts.sign(ctx.receipt_key, receipts.Receipt(got.kind, got.id, got.digest, got.station_id,
                                                               got.key_id, got.received_at))
    return answer(201 if got.created else 200, "stored" if got.created else "duplicate", id=got.id,
                  kind=got.kind, digest=got.digest, url=got.url, receipt=receipt)


@router.post("/api/v1/certificates", status_code=201, tags=["certificates"], responses=UPLOAD_RESPONSES,
             openapi_extra=_body_doc(ENVELOPE_SCHEMA, BEARER))
async def upload_certificate(request: Request) -> JSONResponse:
    """Upload one signed erasure certificate (or audit report) as a DSSE envelope.

    **Who:** an enrolled, unrevoked station (its bearer), with an envelope its own key signed."""
    return await _upload(request, None)


@router.post("/api/v1/audits", status_code=201, tags=["audits"], responses=UPLOAD_RESPONSES,
             openapi_extra=_body_doc(ENVELOPE_SCHEMA, BEARER))
async def upload_audit(request: Request) -> JSONResponse:
    """Upload one signed audit report as a DSSE envelope.

    **Who:** an enrolled, unrevoked station (its bearer), with an envelope its own key signed."""
    return await _upload(request, ingest.AUDIT)


@router.post("/api/v1/progress", status_code=202, tags=["progress"],
             responses={400: REJECTION, 401: REJECTION, 413: REJECTION, 429: REJECTION},
             openapi_extra=_body_doc({"type": "object", "properties": {
                 "device": {"type": "string"}, "serial": {"type": "string"}, "model": {"type": "string"},
                 "phase": {"type": "string"}, "state": {"type": "string", "enum": ["running", "done", "failed"]},
                 "pass_index": {"type": "integer"}, "pass_count": {"type": "integer"},
                 "bytes_done": {"type": "integer"}, "bytes_total": {"type": "integer"},
                 "throughput_bps": {"type": "number"}, "eta_s": {"type": "number"},
                 "drives": {"type": "array", "items": {"type": "object"}}}}, BEARER))
async def progress(request: Request) -> JSONResponse:
    """Live progress of one drive, or of a batch ``{"drives": [...]}``.

    **Who:** an enrolled, unrevoked station (its bearer). Shown to its workshop and the coordinator."""
    ctx = _ctx(request)
    body = await read_body(request, SMALL_BODY)
    station = stations.authenticate(ctx.db, request.headers.get("authorization"))
    items = parse_items(json_object(body))
    ctx.progress.admit(station)
    n = ctx.progress.record(station, items)
    return JSONResponse({"status": "accepted", "accepted": n}, status_code=202)


@router.get("/api/v1/certificates", tags=["certificates"], responses={400: REJECTION, 401: REJECTION},
            openapi_extra={"security": READERS}, description="Search certificates by serial, lot, station and "
            "reception date." + WHO_READS)
def list_certificates(request: Request, serial: str | None = None, lot: str | None = None,
                      station: str | None = None, since: str | None = None, until: str | None = None,
                      outcome: str | None = None, limit: int = Query(100, ge=1, le=queries.MAX_LIMIT),
                      offset: int = Query(0, ge=0, le=10**9)) -> JSONResponse:
    ctx = _ctx(request)
    who = access.reader(request)
    f = queries.Filters(serial=serial, lot=lot, station=station, since=queries.parse_when(since, "since"),
                        until=queries.parse_when(until, "until", end=True), outcome=outcome, limit=limit,
                        offset=offset, visible=access.certificates(who))
    total, rows = queries.search(ctx.db, f)
    return JSONResponse({"total": total, "items": [queries.summary_json(c, r) for c, r in rows]})


@router.get("/api/v1/certificates/{cert_id}", tags=["certificates"], responses={401: REJECTION, 404: REJECTION},
            openapi_extra={"security": READERS}, description="One certificate: envelope, decoded payload and "
            "verification status (re-checked now)." + WHO_READS)
def get_certificate(request: Request, cert_id: str) -> JSONResponse:
    ctx = _ctx(request)
    who = access.reader(request)
    return JSONResponse(queries.get_certificate(ctx.db, cert_id, access.certificates(who),
                                                access.audits(who)).to_json())


@router.get("/api/v1/audits/{audit_id}", tags=["audits"], responses={401: REJECTION, 404: REJECTION},
            openapi_extra={"security": READERS}, description="One audit report with its verification status and "
            "the disks it lists." + WHO_READS + " A donor sees the reports its lots' certificates link to.")
def get_audit(request: Request, audit_id: str) -> JSONResponse:
    ctx = _ctx(request)
    who = access.reader(request)
    return JSONResponse(queries.get_audit(ctx.db, audit_id, access.audits(who)).to_json())


@router.get("/api/v1/lots", tags=["lots"], responses={401: REJECTION}, openapi_extra={"security": READERS},
            description="The lots the asker sees: lot records (donor, workshop, status, language, received "
            "date) and lot names that certificates carry, with their counts." + WHO_READS)
def list_lots(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    who = access.reader(request)
    return JSONResponse({"items": [{"name": v.name, "workshop": v.workshop, "donor": v.donor, "status": v.status,
                                    "language": v.language,
                                    "received_on": v.received_on.isoformat() if v.received_on else None,
                                    "certificates": v.certificates, "successes": v.successes}
                                   for v in lot_service.list_lots(ctx.db, who)]})


@router.post("/api/v1/verify", tags=["verify"], responses={400: REJECTION, 413: REJECTION, 429: REJECTION},
             openapi_extra=_body_doc(ENVELOPE_SCHEMA))
async def verify_certificate(request: Request) -> JSONResponse:
    """Check any certificate against the enrolled station keys; nothing is stored.

    **Who:** anyone, rate-limited per address. It answers on the file sent, never with a
    stored certificate's details."""
    ctx = _ctx(request)
    verify.admit(ctx, request)
    data = await read_body(request, ctx.settings.max_body)
    return JSONResponse((await verify.verify_off_loop(ctx.db, data)).to_json())


@router.get(receipts.KEY_URL, tags=["service"])
def receipt_key(request: Request) -> JSONResponse:
    """The collector's public key, which signs the receipt returned with every upload.

    **Who:** anyone."""
    return JSONResponse(receipts.public_json(_ctx(request).receipt_key))


@router.get("/healthz", tags=["service"])
def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "schema_version": _ctx(request).schema_version})


# ----------------------------------------------------------------------------- admin

@router.post("/api/v1/admin/tokens", status_code=201, tags=["admin"],
             responses={400: REJECTION, 401: REJECTION, 403: REJECTION, 404: REJECTION, 415: REJECTION,
                        429: REJECTION, 503: REJECTION},
             openapi_extra=_body_doc({"type": "object", "properties": {
                 "lot": {"type": "string"}, "ttl_hours": {"type": "number"},
                 "workshop": {"type": "string", "description": "name or id; optional when there is one choice"}}},
                 ADMINS),
             description="Create a one-time enrollment token (shown once) for a station of a workshop, and a lot "
             "of that workshop (its record is created when missing)." + WHO_MANAGES)
async def create_token(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    who = access.admin_write(request)
    csrf.require_json(request)
    body = json_object(await read_body(request, SMALL_BODY))
    lot, ttl = body.get("lot"), body.get("ttl_hours", ctx.settings.token_ttl_hours)
    if lot is not None and isinstance(lot, str) and not _is_unicode(lot):
        raise Malformed("lot is not valid Unicode (lone surrogate)")
    if lot is not None and (problem := fields.lot_problem(lot)):
        raise Malformed(f"lot: {problem}")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= 24 * 3650:
        raise Malformed("ttl_hours must be a positive number of hours (at most ten years)")
    workshop = body.get("workshop")
    if workshop is not None and (not isinstance(workshop, (str, int)) or isinstance(workshop, bool)
                                 or (isinstance(workshop, str) and not _is_unicode(workshop))):
        raise Malformed("workshop must be a workshop's name or id")
    workshop_id = stations.workshop_for(ctx.db, workshop, who.managed_workshops())
    t = stations.create_token(ctx.db, lot, ttl, workshop_id=workshop_id, actor=who.actor)
    return JSONResponse({"status": "created", "token": t.token, "lot": t.lot,
                         "expires_at": stations.iso(t.expires_at)}, status_code=201)


@router.get("/api/v1/admin/stations", tags=["admin"], responses={401: REJECTION, 403: REJECTION, 503: REJECTION},
            openapi_extra={"security": ADMINS}, description="The stations the asker manages." + WHO_MANAGES)
def admin_stations(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    who = access.admin(request)
    managed = who.managed_workshops()
    visible = None if managed is None else Station.org_id.in_(managed)
    return JSONResponse({"items": [s.to_json() for s in stations.list_stations(ctx.db, visible)]})


@router.post("/api/v1/admin/stations/{station_id}/revoke", tags=["admin"],
             responses={401: REJECTION, 403: REJECTION, 404: REJECTION, 415: REJECTION, 429: REJECTION,
                        503: REJECTION}, openapi_extra={"security": ADMINS},
             description="Refuse further uploads from a station; its certificates stay, marked revoked." + WHO_MANAGES)
def admin_revoke(request: Request, station_id: str) -> JSONResponse:
    ctx = _ctx(request)
    who = access.admin_write(request)
    csrf.require_json_or_empty(request)
    info = stations.revoke(ctx.db, station_id, who.actor, who.managed_workshops())
    return JSONResponse({"status": "revoked", **info.to_json()})


@router.get("/api/v1/admin/events", tags=["admin"], responses={401: REJECTION, 403: REJECTION, 503: REJECTION},
            openapi_extra={"security": ADMINS},
            description="The audit log, newest first: who did what, when, from where.\n\n**Who:** the Basic admin "
            "and a coordinator's admins (every event); an organisation's admins (that organisation's events).")
def admin_events(request: Request, limit: int = Query(200, ge=1, le=1000)) -> JSONResponse:
    ctx = _ctx(request)
    who = access.admin(request)
    if not who.is_admin():
        raise Forbidden("the audit log is shown to admins")
    return JSONResponse({"items": [{"id": e.id, "at": stations.iso(e.at), "actor": e.actor, "client": e.client,
                                    "tag": e.tag, "org_id": e.org_id, "detail": json.loads(e.detail)}
                                   for e in events.recent(ctx.db, who.event_scope(), limit)]})


@router.post("/api/v1/admin/lots", status_code=201, tags=["admin", "lots"],
             responses={400: REJECTION, 401: REJECTION, 403: REJECTION, 404: REJECTION, 409: REJECTION,
                        415: REJECTION, 429: REJECTION, 503: REJECTION},
             openapi_extra=_body_doc({"type": "object", "required": ["name"], "properties": {
                 "name": {"type": "string"}, "workshop": {"type": "string"}, "donor": {"type": "string"},
                 "language": {"type": "string", "enum": ["fr", "en"]},
                 "received_on": {"type": "string", "format": "date"}}}, ADMINS),
             description="Create an open lot of a workshop, given by a donor (same as `ardoise-collector lot "
             "create`)." + WHO_MANAGES)
async def create_lot(request: Request) -> JSONResponse:
    from datetime import date

    ctx = _ctx(request)
    who = access.admin_write(request)
    csrf.require_json(request)
    body = json_object(await read_body(request, SMALL_BODY))
    for key in ("name", "workshop", "donor", "language", "received_on"):
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not _is_unicode(value) or len(value) > 200
                                  or not value.isprintable()):
            raise Malformed(f"{key} must be printable text of at most 200 characters")
    received = None
    if body.get("received_on"):
        try:
            received = date.fromisoformat(body["received_on"])
        except ValueError:
            raise Malformed("received_on must be a date, YYYY-MM-DD") from None
    workshop = stations.workshop_for(ctx.db, body.get("workshop"), who.managed_workshops())
    lot = lot_service.create_lot(ctx.db, body.get("name"), workshop, who.actor, donor=body.get("donor") or None,
                                 language=body.get("language") or "fr", received_on=received, who=who)
    return JSONResponse({"status": "created", "id": lot.id, "name": lot.name, "workshop_id": lot.workshop_id,
                         "donor_id": lot.donor_id, "language": lot.language, "status_of_lot": lot.status,
                         "received_on": lot.received_on.isoformat() if lot.received_on else None},
                        status_code=201)
