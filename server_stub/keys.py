"""The public key directory: every station key ever enrolled here, with its enrollment and
revocation dates, at stable URLs (docs/collector-api.md §5, "Station keys").

Public like the verify page, even with --require-login: a donor's officer checks a
certificate PDF with `ardoise verify --collector URL` and holds no account here. A key is
public by nature; the station names and lots are not listed.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from server_stub import stations
from server_stub.errors import NotFound

router = APIRouter()

_KEY_ID = re.compile(r"[0-9a-f]{64}")


def directory(db) -> list[dict]:
    """One entry per enrollment: a key revoked then enrolled again appears twice."""
    return [{"key_id": st.key_id, "station_id": st.id, "enrolled_at": stations.iso(st.enrolled_at),
             "revoked_at": stations.iso(st.revoked_at), "pem_url": f"/keys/{st.key_id}.pem", "public_pem": st.public_pem}
            for st in stations.all_stations(db)]


@router.get("/api/v1/keys", tags=["verify"])
def list_keys(request: Request) -> JSONResponse:
    """Every station public key ever enrolled, revoked ones included (they stay verifiable)."""
    return JSONResponse({"keys": directory(request.app.state.ctx.db)})


@router.get("/keys/{key_id}.pem", tags=["verify"])
def key_pem(request: Request, key_id: str) -> Response:
    if not _KEY_ID.fullmatch(key_id):
        raise NotFound("no such key (a key id is 64 lower-case hex digits)")
    for k in directory(request.app.state.ctx.db):
        if k["key_id"] == key_id:
            return Response(k["public_pem"], media_type="application/x-pem-file",
                            headers={"Content-Disposition": f'attachment; filename="{key_id[:16]}.pem"'})
    raise NotFound(f"no station key {key_id[:16]}... enrolled here")


def pdf_proof(base_url: str, c) -> dict:
    """What a certificate PDF served from here carries (``render_certificate_pdf`` keywords):
    the envelope as the station uploaded it, the station's key, and this page's URL."""
    from agent.certify.links import certificate_url
    from agent.certify.pdf_embed import Proof

    return {"proof": Proof(c.row.envelope.encode("utf-8"), c.station.public_pem) if c.station else None,
            "qr_data": certificate_url(base_url, c.row.id)}
