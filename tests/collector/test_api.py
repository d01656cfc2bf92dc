"""The collector's HTTP API against a real server, on SQLite and on PostgreSQL: every
status code of docs/collector-api.md, and nothing stored on any rejection."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

import certs
from agent.certify.envelope import ERASURE_TYPE, sign_envelope
from agent.certify.keys import StationKey


def _tamper_payload(body: bytes, change) -> bytes:
    env = json.loads(body)
    payload = json.loads(base64.b64decode(env["payload"]))
    change(payload)
    env["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).decode()
    return json.dumps(env).encode()


def _signed(key: StationKey, payload: dict) -> bytes:
    return json.dumps(sign_envelope(payload, ERASURE_TYPE, key)).encode()


# --------------------------------------------------------------------------- 201 / 200


def test_upload_is_stored_and_a_second_upload_is_a_duplicate_without_second_row(collector, station):
    body = certs.erasure_envelope(station.key, "SER-DUP")
    first = station.upload(body)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "stored" and first.json()["reason"] is None
    before = collector.counts()
    again = station.upload(body)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["id"] == first.json()["id"] and again.json()["digest"] == first.json()["digest"]
    assert collector.counts() == before


def test_concurrent_identical_uploads_store_exactly_one_row(collector, station):
    body = certs.erasure_envelope(station.key, "SER-RACE")
    codes: list[int] = []
    barrier = threading.Barrier(8)

    def send():
        barrier.wait()
        codes.append(station.upload(body).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 7 + [201]
    found = collector.api("GET", "/api/v1/certificates", params={"serial": "SER-RACE"}).json()
    assert found["total"] == 1


def test_failed_wipe_certificate_is_stored_and_listed_as_needing_attention(collector, station):
    r = station.upload(certs.erasure_envelope(station.key, "SER-FAILED", outcome="failed"))
    assert r.status_code == 201, r.text
    page = collector.api("GET", "/").text
    assert "Drives needing attention" in page and "SER-FAILED" in page and "put it back and wipe it again" in page


# --------------------------------------------------------------------------- 400


@pytest.mark.parametrize("body", [
    b"this is not json",
    b'{"payloadType": "application/vnd.ardoise.erasure+json", "payload": "e30=", ',
    b"[1, 2, 3]",
    b'{"payloadType": "application/vnd.ardoise.erasure+json", "payload": "e30="}',
    b'{"payloadType": "application/vnd.ardoise.erasure+json", "payload": "%%%", "signatures": [{"keyid": "a", "sig": "AA=="}]}',
    b'{"payloadType": 7, "payload": "e30=", "signatures": [{"keyid": "a", "sig": "AA=="}]}',
    b'{"payloadType": "application/vnd.ardoise.erasure+json", "payload": "e30=", "signatures": []}',
    b"",
], ids=["not-json", "truncated", "array", "no-signatures", "bad-base64", "type-not-string", "empty-signatures",
        "empty"])
def test_malformed_envelope_is_400_and_stores_nothing(collector, station, body):
    before = collector.counts()
    r = station.upload(body)
    assert r.status_code == 400, r.text
    assert r.json()["status"] == "rejected" and r.json()["reason"]
    assert collector.counts() == before


# --------------------------------------------------------------------------- 401


def test_upload_without_or_with_a_wrong_bearer_is_401_and_stores_nothing(collector, station):
    body = certs.erasure_envelope(station.key, "SER-401")
    before = collector.counts()
    for headers in ({}, {"Authorization": "Bearer ardst_not-a-real-token"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        r = collector.api("POST", "/api/v1/certificates", data=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["reason"]
    assert collector.counts() == before


def test_revoked_station_is_refused_but_its_old_certificates_stay_verifiable_and_marked(collector):
    st = collector.enroll()
    old = st.upload(certs.erasure_envelope(st.key, "SER-REVOKED-OLD"))
    assert old.status_code == 201
    r = collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"]
    before = collector.counts()
    refused = st.upload(certs.erasure_envelope(st.key, "SER-REVOKED-NEW"))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["reason"]
    assert collector.counts() == before
    got = collector.api("GET", f"/api/v1/certificates/{old.json()['id']}").json()
    assert got["verification"] == {"valid": True, "reasons": [], "station_revoked": True}
    listed = collector.api("GET", "/api/v1/certificates", params={"serial": "SER-REVOKED-OLD"}).json()
    assert listed["items"][0]["station_revoked"] is True
    assert "revoked" in collector.api("GET", f"/certificates/{old.json()['id']}").text


# --------------------------------------------------------------------------- 413


def test_body_over_the_limit_is_413_by_content_length_and_by_streamed_size(collector, station):
    huge = b'{"payloadType": "' + b"x" * (1 << 20) + b'"}'
    before = collector.counts()
    r = station.upload(huge)
    assert r.status_code == 413, r.text

    def chunks():  # no Content-Length: chunked transfer encoding
        for _ in range(40):
            yield b"x" * 32768

    r = collector.api("POST", "/api/v1/certificates", data=chunks(), headers=station.headers)
    assert r.status_code == 413, r.text
    assert collector.counts() == before


# --------------------------------------------------------------------------- 422


def test_tampered_payload_is_422_and_stores_nothing(collector, station):
    body = _tamper_payload(certs.erasure_envelope(station.key, "SER-TAMPER"),
                           lambda p: p["media"].update(serial="SER-SWAPPED"))
    before = collector.counts()
    r = station.upload(body)
    assert r.status_code == 422, r.text
    assert "bad-signature" in r.json()["reason"]
    assert collector.counts() == before


def test_schema_violation_and_inconsistency_are_422(collector, station):
    payload = certs.erasure_payload(station.key, "SER-SCHEMA")
    del payload["media"]
    inconsistent = certs.erasure_payload(station.key, "SER-INCONSISTENT")
    inconsistent["sanitization"]["outcome"] = "failed"  # yet category Clear stays claimed
    before = collector.counts()
    r1 = station.upload(_signed(station.key, payload))
    r2 = station.upload(_signed(station.key, inconsistent))
    assert (r1.status_code, r2.status_code) == (422, 422), (r1.text, r2.text)
    assert r1.json()["reason"].startswith("schema")
    assert r2.json()["reason"].startswith("inconsistent")
    assert collector.counts() == before


def test_certificate_signed_by_another_stations_key_is_422(collector, station):
    other = collector.enroll()
    before = collector.counts()
    r = station.upload(certs.erasure_envelope(other.key, "SER-OTHER-KEY"))
    assert r.status_code == 422
    assert "this station's key" in r.json()["reason"]
    assert collector.counts() == before


def test_same_certificate_id_with_different_content_is_422(collector, station):
    cid = str(uuid.uuid4())
    assert station.upload(certs.erasure_envelope(station.key, "SER-ID-1", certificate_id=cid)).status_code == 201
    before = collector.counts()
    r = station.upload(certs.erasure_envelope(station.key, "SER-ID-2", certificate_id=cid))
    assert r.status_code == 422
    assert "different digest" in r.json()["reason"]
    assert collector.counts() == before


def test_audit_endpoint_refuses_an_erasure_certificate(collector, station):
    before = collector.counts()
    r = station.upload(certs.erasure_envelope(station.key, "SER-WRONG-ENDPOINT"), path="/api/v1/audits")
    assert r.status_code == 422
    assert collector.counts() == before


# --------------------------------------------------------------------------- enrollment


def test_enrollment_token_is_one_time_and_a_lost_answer_can_be_retried(collector):
    key = StationKey.generate()
    token = collector.token("LOT-ENROLL")
    first = collector.api("POST", "/api/v1/stations",
                          json=collector.enrollment(key, token, key_id=key.key_id, name="genuine"))
    assert first.status_code == 201
    assert first.json()["key_id"] == key.key_id and first.json()["lot"] == "LOT-ENROLL"
    retry = collector.api("POST", "/api/v1/stations", json=collector.enrollment(key, token, name="renamed"))
    assert retry.status_code == 200 and retry.json()["status"] == "re-enrolled"
    assert retry.json()["station_id"] == first.json()["station_id"]
    assert retry.json()["bearer"] != first.json()["bearer"]
    body = certs.erasure_envelope(key, "SER-ENROLL", lot=None)
    stale = collector.api("POST", "/api/v1/certificates", data=body,
                          headers={"Authorization": "Bearer " + first.json()["bearer"]})
    assert stale.status_code == 401
    fresh = collector.api("POST", "/api/v1/certificates", data=body,
                          headers={"Authorization": "Bearer " + retry.json()["bearer"]})
    assert fresh.status_code == 201
    # A certificate without its own lot takes the lot of the station's token.
    assert collector.api("GET", f"/api/v1/certificates/{fresh.json()['id']}").json()["lot"] == "LOT-ENROLL"
    # A retry never renames the station.
    listed = {s["station_id"]: s for s in collector.admin("GET", "/api/v1/admin/stations").json()["items"]}
    assert listed[first.json()["station_id"]]["name"] == "genuine"
    thief = StationKey.generate()
    assert collector.api("POST", "/api/v1/stations", json=collector.enrollment(thief, token)).status_code == 401


def test_used_token_and_the_public_key_alone_do_not_re_enroll_nor_kick_out_the_station(collector):
    token = collector.token()
    key = StationKey.generate()
    # The genuine station enrolled with this token; an attacker has the token and the
    # public key (it is published, and printed on every certificate's key id), not the private key.
    genuine = collector.api("POST", "/api/v1/stations", json=collector.enrollment(key, token))
    assert genuine.status_code == 201
    bearer = genuine.json()["bearer"]
    before = collector.counts()
    challenge = collector.api("POST", "/api/v1/stations/challenge").json()["challenge"]
    forged_sig = base64.b64encode(StationKey.generate().sign(b"anything" * 8)).decode()
    attempts = [
        {"token": token, "public_key": key.public_pem},  # the attack of issue 17: no proof at all
        {"token": token, "public_key": key.public_pem, "challenge": challenge, "signature": forged_sig},
        {"token": token, "public_key": key.public_pem, "challenge": "ardch_AAAA.0000", "signature": forged_sig},
    ]
    for body in attempts:
        r = collector.api("POST", "/api/v1/stations", json={**body, "name": "evil"})
        assert r.status_code in (400, 401), r.text
        assert r.json()["reason"]
    # A valid signature over another token's challenge message is no proof for this token.
    other = collector.enrollment(key, "ardenr_other")
    r = collector.api("POST", "/api/v1/stations", json={**other, "token": token})
    assert r.status_code == 401 and "signature" in r.json()["reason"]
    assert collector.counts() == before
    # The real station was not kicked out.
    assert collector.api("POST", "/api/v1/certificates", data=certs.erasure_envelope(key, "SER-STAYS"),
                            headers={"Authorization": "Bearer " + bearer}).status_code == 201


def test_expired_enrollment_token_is_refused_first_time_and_on_retry(collector):
    key = StationKey.generate()
    token = collector.token()
    assert collector.api("POST", "/api/v1/stations", json=collector.enrollment(key, token)).status_code == 201
    fresh_key = StationKey.generate()
    fresh_token = collector.token()
    with collector.engine.begin() as conn:
        conn.execute(text("UPDATE enrollment_tokens SET expires_at = :t"),
                     {"t": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=1)})
    before = collector.counts()
    for k, t in ((fresh_key, fresh_token), (key, token)):
        r = collector.api("POST", "/api/v1/stations", json=collector.enrollment(k, t))
        assert r.status_code == 401 and "expired" in r.json()["reason"], r.text
    assert collector.counts() == before


def test_a_revoked_key_cannot_enroll_again_and_its_certificates_stay_marked_revoked(collector):
    st = collector.enroll()
    old = st.upload(certs.erasure_envelope(st.key, "SER-REVOKED-KEY"))
    assert old.status_code == 201
    assert collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke").status_code == 200
    before = collector.counts()
    before["enrollment_tokens"] += 1
    r = collector.api("POST", "/api/v1/stations", json=collector.enrollment(st.key, collector.token()))
    assert r.status_code == 403 and "revoked" in r.json()["reason"], r.text
    assert collector.counts() == before
    verdict = collector.api("POST", "/api/v1/verify", data=certs.erasure_envelope(st.key, "SER-REVOKED-KEY")).json()
    assert verdict["station_revoked"] is True and verdict["station_id"] == st.station_id


def test_a_key_enrolled_again_by_an_older_collector_still_verifies_as_revoked(collector):
    """Databases written before revocation stuck to the key may hold the key twice."""
    st = collector.enroll()
    assert collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke").status_code == 200
    with collector.engine.begin() as conn:
        conn.execute(text("INSERT INTO stations (id, name, key_id, public_pem, bearer_hash, lot, enrolled_at) "
                          "SELECT 'st_again_' || substr(id, 4), name, key_id, public_pem, 'x' || substr(bearer_hash, 2), lot, "
                          ":t FROM stations WHERE id = :id"),
                     {"id": st.station_id, "t": datetime.now(timezone.utc).replace(tzinfo=None)})
    verdict = collector.api("POST", "/api/v1/verify", data=certs.erasure_envelope(st.key, "SER-OLD-DB")).json()
    assert verdict["valid"] is True and verdict["station_revoked"] is True


@pytest.mark.parametrize("case, status", [
    ("unknown-token", 401), ("bad-pem", 422), ("private-key", 422), ("key-id-mismatch", 422), ("not-json", 400),
    ("missing-key", 400), ("already-enrolled", 409), ("no-proof", 400), ("form-encoded", 415),
    ("surrogate-name", 400), ("surrogate-pem", 400),
])
def test_enrollment_rejections_store_nothing(collector, case, status):
    key = StationKey.generate()
    if case == "already-enrolled":
        collector.enroll(key)
    before = collector.counts()
    token = collector.token() if case != "unknown-token" else "ardenr_nope"
    before["enrollment_tokens"] += case != "unknown-token"
    body = collector.enrollment(key, token)
    kw = {"json": body}
    if case == "bad-pem":
        body["public_key"] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    elif case == "private-key":
        body["public_key"] = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    elif case == "key-id-mismatch":
        body["key_id"] = "0" * 64
    elif case == "not-json":
        kw = {"data": b"{not json", "headers": {"Content-Type": "application/json"}}
    elif case == "missing-key":
        del body["public_key"]
    elif case == "no-proof":
        del body["challenge"], body["signature"]
    elif case == "form-encoded":
        kw = {"data": body}
    elif case.startswith("surrogate"):
        body["name" if case == "surrogate-name" else "public_key"] = "\ud800"
        kw = {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}
    r = collector.api("POST", "/api/v1/stations", **kw)
    assert r.status_code == status, r.text
    assert r.json()["status"] == "rejected" and r.json()["reason"]
    assert collector.counts() == before


# --------------------------------------------------------------------------- audits


def test_audit_report_is_stored_and_shown_beside_its_disks_certificates(collector, station):
    cert = station.upload(certs.erasure_envelope(station.key, "SER-AUDITED"))
    audit = station.upload(certs.audit_envelope(station.key, ["SER-AUDITED", "SER-OTHER-DISK"]), path="/api/v1/audits")
    assert (cert.status_code, audit.status_code) == (201, 201), audit.text
    assert audit.json()["kind"] == "audit"
    assert station.upload(certs.audit_envelope(station.key, ["X"])).json()["kind"] == "audit"  # main endpoint too
    got = collector.api("GET", f"/api/v1/certificates/{cert.json()['id']}").json()
    assert audit.json()["id"] in got["audit_ids"]
    page = collector.api("GET", f"/certificates/{cert.json()['id']}").text
    assert f"/audits/{audit.json()['id']}" in page and "ThinkPad T480" in page
    a = collector.api("GET", f"/api/v1/audits/{audit.json()['id']}").json()
    assert a["verification"]["valid"] and sorted(a["disk_serials"]) == ["SER-AUDITED", "SER-OTHER-DISK"]
    pdf = collector.api("GET", f"/audits/{audit.json()['id']}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text_out = subprocess.run(["pdftotext", "-", "-"], input=pdf.content, capture_output=True, check=True).stdout
    assert b"SER-AUDITED" in text_out and cert.json()["id"].encode() in text_out


# --------------------------------------------------------------------------- queries


def test_queries_by_serial_lot_station_and_date(collector):
    st = collector.enroll(lot="LOT-Q")
    ids = [st.upload(certs.erasure_envelope(st.key, f"SER-Q{i}", lot="LOT-Q")).json()["id"] for i in range(3)]
    q = lambda **p: collector.api("GET", "/api/v1/certificates", params=p).json()  # noqa: E731
    assert [i["id"] for i in q(serial="SER-Q1")["items"]] == [ids[1]]
    assert sorted(i["id"] for i in q(lot="LOT-Q")["items"]) == sorted(ids)
    assert q(station=st.station_id)["total"] == 3
    today = datetime.now(timezone.utc).date()
    assert q(lot="LOT-Q", since=str(today))["total"] == 3
    assert q(lot="LOT-Q", since=str(today + timedelta(days=1)))["total"] == 0
    assert q(lot="LOT-Q", until=str(today - timedelta(days=1)))["total"] == 0
    assert q(lot="LOT-Q", limit=2)["total"] == 3 and len(q(lot="LOT-Q", limit=2)["items"]) == 2
    bad = collector.api("GET", "/api/v1/certificates", params={"since": "yesterday-ish"})
    assert bad.status_code == 400


def test_certificate_json_carries_envelope_payload_and_verification(collector, station):
    body = certs.erasure_envelope(station.key, "SER-JSON")
    cid = station.upload(body).json()["id"]
    got = collector.api("GET", f"/api/v1/certificates/{cid}").json()
    assert got["envelope"] == json.loads(body)
    assert got["payload"]["media"]["serial"] == "SER-JSON"
    assert got["verification"]["valid"] is True
    # The signed file is served back byte for byte, so `ardoise verify` accepts it.
    assert collector.api("GET", f"/certificates/{cid}.json").content == body
    missing = collector.api("GET", f"/api/v1/certificates/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["status"] == "not-found"


def test_lot_csv_and_pdf_exports(collector):
    st = collector.enroll(lot="LOT-CSV")
    st.upload(certs.erasure_envelope(st.key, "SER-C1", lot="LOT-CSV"))
    st.upload(certs.erasure_envelope(st.key, "=HYPERLINK(1)", lot="LOT-CSV", outcome="failed"))
    r = collector.api("GET", "/lots/LOT-CSV?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.strip().split("\r\n")
    assert rows[0].startswith("certificate_id,serial,") and len(rows) == 3
    assert any(",SER-C1," in row and ",success," in row for row in rows)
    assert any(",'=HYPERLINK(1)," in row for row in rows)  # no formula injection in spreadsheets
    pdf = collector.api("GET", "/lots/LOT-CSV?format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    page = collector.api("GET", "/lots/LOT-CSV").text
    assert 'id="lot-drives">2<' in page
    assert collector.api("GET", "/lots/NO-SUCH-LOT?format=csv").status_code == 404


# --------------------------------------------------------------------------- progress


def test_progress_is_shown_live_then_dropped_when_done_or_stale(collector, station):
    drive = {"device": "/dev/sdq", "serial": "SER-LIVE", "model": "Live Disk", "phase": "overwrite",
             "pass_index": 1, "pass_count": 1, "bytes_done": 50, "bytes_total": 200, "throughput_bps": 1.5e8}
    r = collector.api("POST", "/api/v1/progress", json=drive, headers=station.headers)
    assert r.status_code == 202 and r.json() == {"status": "accepted", "accepted": 1}
    batch = {"drives": [{"device": "/dev/sdr", "serial": "SER-LIVE-2"}, {"device": "/dev/sds", "serial": "SER-STALE"}]}
    assert collector.api("POST", "/api/v1/progress", json=batch, headers=station.headers).status_code == 202
    live = collector.api("GET", "/dashboard/live").text
    assert "SER-LIVE" in live and "25.0 %" in live and "SER-STALE" in live
    done = collector.api("POST", "/api/v1/progress", json={**drive, "state": "done"}, headers=station.headers)
    assert done.status_code == 202
    with collector.engine.begin() as conn:  # as if /dev/sds had not been heard from for ten minutes
        conn.execute(text("UPDATE live_progress SET updated_at = :t WHERE device = '/dev/sds'"),
                     {"t": datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10)})
    live = collector.api("GET", "/dashboard/live").text
    assert "SER-LIVE-2" in live and "/dev/sdq" not in live and "SER-STALE" not in live


def test_progress_is_rate_limited_per_station(collector):
    st = collector.enroll()
    # 5 requests/s with bursts of 10: 60 requests get refused unless each took over 160 ms.
    limited = []
    for _ in range(60):
        r = collector.api("POST", "/api/v1/progress", json={"device": "/dev/sdx"}, headers=st.headers)
        assert r.status_code in (202, 429)
        if r.status_code == 429:
            limited.append(r)
            break
    assert limited
    assert int(limited[0].headers["Retry-After"]) >= 1 and limited[0].json()["status"] == "rate-limited"
    other = collector.enroll()  # another station is not slowed down by the first
    assert collector.api("POST", "/api/v1/progress", json={"device": "/dev/sdx"},
                         headers=other.headers).status_code == 202


@pytest.mark.parametrize("body", [{"serial": "no device"}, {"device": "/dev/sda", "bytes_done": -1},
                                  {"device": "/dev/sda", "state": "exploded"}, {"drives": []}, [1]])
def test_malformed_progress_is_400(collector, station, body):
    r = collector.api("POST", "/api/v1/progress", json=body, headers=station.headers)
    assert r.status_code == 400, r.text


# --------------------------------------------------------------------------- verify + admin


def test_public_verify_api_says_valid_or_invalid_and_why_without_storing(collector, station):
    body = certs.erasure_envelope(station.key, "SER-VERIFY")
    before = collector.counts()
    ok = collector.api("POST", "/api/v1/verify", data=body).json()
    assert ok["valid"] is True and ok["station_id"] == station.station_id and ok["stored"] is False
    bad = collector.api("POST", "/api/v1/verify",
                        data=_tamper_payload(body, lambda p: p["media"].update(serial="X"))).json()
    assert bad["valid"] is False and "bad-signature" in bad["reasons"][0]
    stranger = collector.api("POST", "/api/v1/verify",
                             data=certs.erasure_envelope(StationKey.generate(), "SER-STRANGER")).json()
    assert stranger["valid"] is False and "unknown-key" in stranger["reasons"][0]
    assert collector.counts() == before


def test_admin_needs_the_password(collector):
    assert collector.api("POST", "/api/v1/admin/tokens", json={"lot": "X"}).status_code == 401
    assert collector.api("POST", "/api/v1/admin/tokens", json={"lot": "X"},
                         auth=("admin", "wrong")).status_code == 401
    r = collector.api("GET", "/admin")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert collector.admin("GET", "/admin").status_code == 200
    assert collector.admin("GET", "/api/v1/admin/stations").status_code == 200


def test_certificate_pdf_is_rendered_by_the_agents_renderer(collector, station):
    cid = station.upload(certs.erasure_envelope(station.key, "SER-PDF-1234")).json()["id"]
    r = collector.api("GET", f"/certificates/{cid}.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text_out = subprocess.run(["pdftotext", "-", "-"], input=r.content, capture_output=True, check=True).stdout
    assert b"SER-PDF-1234" in text_out and cid.encode() in text_out
