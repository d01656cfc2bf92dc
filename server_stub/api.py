"""The JSON API of docs/collector-api.md (stations, certificates, audits, progress, queries)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent.certify import envelope as env
from server_stub import auth, csrf, enrollproof, fields, ingest, queries, receipts, stations, verify
from server_stub.errors import Malformed
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
    """A challenge for the station to sign with its private key when it enrolls."""
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
    possession of the private key by signing a challenge."""
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
        got = await run_in_threadpool(receive)
    receipt = receipts.sign(ctx.receipt_key, receipts.Receipt(got.kind, got.id, got.digest, got.station_id,
                                                               got.key_id, got.received_at))
    return answer(201 if got.created else 200, "stored" if got.created else "duplicate", id=got.id,
                  kind=got.kind, digest=got.digest, url=got.url, receipt=receipt)


@router.post("/api/v1/certificates", status_code=201, tags=["certificates"], responses=UPLOAD_RESPONSES,
             openapi_extra=_body_doc(ENVELOPE_SCHEMA, BEARER))
async def upload_certificate(request: Request) -> JSONResponse:
    """Upload one signed erasure certificate (or audit report) as a DSSE envelope."""
    return await _upload(request, None)


@router.post("/api/v1/audits", status_code=201, tags=["audits"], responses=UPLOAD_RESPONSES,
             openapi_extra=_body_doc(ENVELOPE_SCHEMA, BEARER))
async def upload_audit(request: Request) -> JSONResponse:
    """Upload one signed audit report as a DSSE envelope."""
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
    """Live progress of one drive, or of a batch ``{"drives": [...]}``."""
    ctx = _ctx(request)
    body = await read_body(request, SMALL_BODY)
    station = stations.authenticate(ctx.db, request.headers.get("authorization"))
    items = parse_items(json_object(body))
    ctx.progress.admit(station)
    n = ctx.progress.record(station, items)
    return JSONResponse({"status": "accepted", "accepted": n}, status_code=202)


@router.get("/api/v1/certificates", tags=["certificates"], responses={400: REJECTION})
def list_certificates(request: Request, serial: str | None = None, lot: str | None = None,
                      station: str | None = None, since: str | None = None, until: str | None = None,
                      outcome: str | None = None, limit: int = Query(100, ge=1, le=queries.MAX_LIMIT),
                      offset: int = Query(0, ge=0, le=10**9)) -> JSONResponse:
    """Search certificates by serial, lot, station and reception date."""
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    f = queries.Filters(serial=serial, lot=lot, station=station, since=queries.parse_when(since, "since"),
                        until=queries.parse_when(until, "until", end=True), outcome=outcome, limit=limit,
                        offset=offset)
    total, rows = queries.search(ctx.db, f)
    return JSONResponse({"total": total, "items": [queries.summary_json(c, r) for c, r in rows]})


@router.get("/api/v1/certificates/{cert_id}", tags=["certificates"], responses={404: REJECTION})
def get_certificate(request: Request, cert_id: str) -> JSONResponse:
    """One certificate: envelope, decoded payload and verification status (re-checked now)."""
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return JSONResponse(queries.get_certificate(ctx.db, cert_id).to_json())


@router.get("/api/v1/audits/{audit_id}", tags=["audits"], responses={404: REJECTION})
def get_audit(request: Request, audit_id: str) -> JSONResponse:
    """One audit report with its verification status and the disks it lists."""
    ctx = _ctx(request)
    auth.check_reader(ctx.settings, request)
    return JSONResponse(queries.get_audit(ctx.db, audit_id).to_json())


@router.post("/api/v1/verify", tags=["verify"], responses={400: REJECTION, 413: REJECTION, 429: REJECTION},
             openapi_extra=_body_doc(ENVELOPE_SCHEMA))
async def verify_certificate(request: Request) -> JSONResponse:
    """Check any certificate against the enrolled station keys; nothing is stored."""
    ctx = _ctx(request)
    verify.admit(ctx, request)
    data = await read_body(request, ctx.settings.max_body)
    return JSONResponse((await verify.verify_off_loop(ctx.db, data)).to_json())


@router.get(receipts.KEY_URL, tags=["service"])
def receipt_key(request: Request) -> JSONResponse:
    """The collector's public key, which signs the receipt returned with every upload."""
    return JSONResponse(receipts.public_json(_ctx(request).receipt_key))


@router.get("/healthz", tags=["service"])
def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "schema_version": _ctx(request).schema_version})


# ----------------------------------------------------------------------------- admin

@router.post("/api/v1/admin/tokens", status_code=201, tags=["admin"],
             responses={400: REJECTION, 401: REJECTION, 403: REJECTION, 415: REJECTION, 429: REJECTION,
                        503: REJECTION},
             openapi_extra=_body_doc({"type": "object", "properties": {
                 "lot": {"type": "string"}, "ttl_hours": {"type": "number"}}}, [{"adminBasic": []}]))
async def create_token(request: Request) -> JSONResponse:
    """Create a one-time enrollment token (shown once)."""
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    csrf.check_same_origin(request)
    csrf.require_json(request)
    body = json_object(await read_body(request, SMALL_BODY))
    lot, ttl = body.get("lot"), body.get("ttl_hours", ctx.settings.token_ttl_hours)
    if lot is not None and isinstance(lot, str) and not _is_unicode(lot):
        raise Malformed("lot is not valid Unicode (lone surrogate)")
    if lot is not None and (problem := fields.lot_problem(lot)):
        raise Malformed(f"lot: {problem}")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= 24 * 3650:
        raise Malformed("ttl_hours must be a positive number of hours (at most ten years)")
    t = stations.create_token(ctx.db, lot, ttl)
    return JSONResponse({"status": "created", "token": t.token, "lot": t.lot,
                         "expires_at": stations.iso(t.expires_at)}, status_code=201)


@router.get("/api/v1/admin/stations", tags=["admin"], responses={401: REJECTION, 503: REJECTION})
def admin_stations(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    return JSONResponse({"items": [s.to_json() for s in stations.list_stations(ctx.db)]})


@router.post("/api/v1/admin/stations/{station_id}/revoke", tags=["admin"],
             responses={401: REJECTION, 403: REJECTION, 404: REJECTION, 415: REJECTION, 429: REJECTION,
                        503: REJECTION})
def admin_revoke(request: Request, station_id: str) -> JSONResponse:
    ctx = _ctx(request)
    auth.check_admin(ctx.settings, request)
    csrf.check_same_origin(request)
    csrf.require_json_or_empty(request)
    info = stations.revoke(ctx.db, station_id)
    return JSONResponse({"status": "revoked", **info.to_json()})
