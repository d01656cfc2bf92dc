"""Hostile input against the collector and the shared verifier (issue 17, "Certificates and
ingest"): every input gets a 4xx or an INVALID with a reason, never a 500; the CLI, the upload
and the public verify refuse the same certificates; a flood of signatures cannot stall the
collector; certificate ids cannot be squatted; lots and receipts."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

import certs
import hostile
from agent.certify import envelope as env
from agent.certify.check import check_certificate
from agent.certify.keys import StationKey
from agent.cli import main as ardoise
import harness
from harness import start_collector, stop_collector


@pytest.fixture(scope="module")
def open_collector(tmp_path_factory):
    """No verify rate limit: these tests send many checks from one address on purpose."""
    tmp = tmp_path_factory.mktemp("hostile")
    c = start_collector(f"sqlite:///{tmp / 'collector.db'}", tmp, extra_args=["--verify-rate", "0"])
    yield c
    stop_collector(c)


@pytest.fixture(scope="module")
def limited_collector(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limited")
    # One check every 2 s after the burst of 20: a loaded test machine, slow between two
    # requests, does not earn a token back before the test has seen the 429s.
    c = start_collector(f"sqlite:///{tmp / 'collector.db'}", tmp, extra_args=("--verify-rate", "0.5"))
    yield c
    stop_collector(c)


def verify_form(c, body: bytes):
    return c.api("POST", "/verify", files={"certificate": ("c.json", body, "application/json")})


# ----------------------------------------------------------------------- the same verdict everywhere

BAD = sorted(hostile.bad_payloads(StationKey.generate()))


@pytest.mark.parametrize("name", BAD)
def test_cli_upload_and_public_verify_refuse_the_same_non_canonical_certificates(open_collector, tmp_path,
                                                                                 capsys, name):
    c = open_collector
    st = c.enroll()
    body = hostile.bad_envelopes(st.key)[name]
    before = c.counts()["certificates"]

    assert not check_certificate(body, {st.key.key_id: st.key.public_key}).valid
    f, pem = tmp_path / "c.json", tmp_path / "station.pem"
    f.write_bytes(body)
    pem.write_text(st.key.public_pem)
    assert ardoise(["verify", "--key", str(pem), str(f)]) == 6  # docs/certificate.md: 6 = invalid
    cli_line = capsys.readouterr().err
    assert "INVALID" in cli_line and "Traceback" not in cli_line

    up = st.upload(body)
    assert up.status_code == 422, up.text
    assert up.json()["reason"]
    assert c.counts()["certificates"] == before

    api = c.api("POST", "/api/v1/verify", data=body)
    assert api.status_code == 200 and api.json()["valid"] is False and api.json()["reasons"]
    page = verify_form(c, body)
    assert page.status_code == 200 and 'id="verdict">INVALID<' in page.text


def test_the_canonical_certificate_these_are_made_from_is_valid_everywhere(open_collector, tmp_path):
    """The control: the hostile inputs are refused for what they change, not for anything else."""
    c = open_collector
    st = c.enroll()
    body = hostile.sign_raw(hostile.canonical_bytes(certs.erasure_payload(st.key, "SER-HOSTILE")), st.key)
    f, pem = tmp_path / "c.json", tmp_path / "station.pem"
    f.write_bytes(body)
    pem.write_text(st.key.public_pem)
    assert ardoise(["verify", "--key", str(pem), str(f)]) == 0
    assert c.api("POST", "/api/v1/verify", data=body).json()["valid"] is True
    assert st.upload(body).status_code == 201


# ----------------------------------------------------------------------- anonymous 500s

def test_a_lone_surrogate_keyid_gets_an_answer_on_both_verify_endpoints(open_collector):
    c = open_collector
    st = c.enroll()
    e = json.loads(certs.erasure_envelope(st.key, "SER-SUR"))
    e["signatures"][0]["keyid"] = "\ud800"
    body = json.dumps(e).encode()  # ensure_ascii: the surrogate travels as \ud800
    api = c.api("POST", "/api/v1/verify", data=body)
    assert api.status_code == 200 and api.json()["valid"] is False
    assert "keyid is not printable" in api.json()["reasons"][0]
    page = verify_form(c, body)
    assert page.status_code == 200 and 'id="verdict">INVALID<' in page.text
    assert st.upload(body).status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/certificates?until=9999-12-31", "/certificates?until=9999-12-31",
                                  "/api/v1/certificates?since=9999-12-31T23:59:60Z",
                                  "/api/v1/certificates?since=0001-01-01T00:00:00%2B23:59",
                                  "/lots/LOT-A?until=9999-12-31T23:59:59-23:59"])
def test_a_date_at_the_end_of_the_calendar_is_a_400(open_collector, path):
    r = open_collector.api("GET", path)
    assert r.status_code == 400, r.text
    assert "until" in r.text or "since" in r.text


@pytest.mark.parametrize("path,body", [
    ("/api/v1/stations", b'{"token": "ardenr_x", "public_key": "\\ud800", "name": "\\udfff"}'),
    ("/api/v1/progress", b'{"device": "/dev/sda", "serial": "\\ud800"}'),
    ("/api/v1/admin/tokens", b'{"lot": "\\ud800"}'),
])
def test_a_lone_surrogate_in_any_json_body_is_a_400(open_collector, path, body):
    c = open_collector
    st = c.enroll()
    auth = {"Authorization": f"Bearer {st.bearer}"} if "progress" in path else {}
    r = c.api("POST", path, data=body, headers={"Content-Type": "application/json", **auth},
              **({"auth": ("admin", harness.ADMIN_PASSWORD)} if "admin" in path else {}))
    assert r.status_code == 400, r.text
    assert "not Unicode text" in r.json()["reason"]


# ----------------------------------------------------------------------- CPU exhaustion

def _signature_flood(n: int = 10_000) -> bytes:
    """About 1 MB: one payload and ``n`` keyless signatures (each would be tried against
    every enrolled key)."""
    sig = base64.b64encode(b"\x00" * 64).decode()
    e = {"payloadType": env.ERASURE_TYPE, "payload": base64.b64encode(b"{}").decode(),
         "signatures": [{"sig": sig} for _ in range(n)]}
    return json.dumps(e, separators=(",", ":")).encode()


def test_a_flood_of_signatures_is_refused_at_once_and_does_not_starve_other_requests(open_collector):
    c = open_collector
    for _ in range(6):  # every enrolled key multiplied the cost before the fix
        c.enroll()
    flood = _signature_flood()
    assert 900_000 < len(flood) < 1 << 20

    t0 = time.monotonic()
    r = c.api("POST", "/api/v1/verify", data=flood)
    assert time.monotonic() - t0 < 1.0
    assert r.status_code == 200 and r.json()["valid"] is False
    assert r.json()["codes"] == ["envelope-shape"] and "10000 signatures" in r.json()["reasons"][0]

    stop = threading.Event()
    answers: list[int] = []

    def attacker():
        while not stop.is_set():
            answers.append(c.api("POST", "/api/v1/verify", data=flood).status_code)

    threads = [threading.Thread(target=attacker) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        latencies = []
        for _ in range(10):
            t0 = time.monotonic()
            assert c.api("GET", "/healthz").status_code == 200
            latencies.append(time.monotonic() - t0)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert max(latencies) < 1.0, latencies
    assert answers and set(answers) == {200}


def test_a_station_uploading_a_megabyte_of_schema_errors_does_not_stall_the_collector(open_collector):
    """A stolen stick signs whatever it likes: 50,000 bad entries cost seconds of the Python
    validator's time before the fix, on the event loop."""
    c = open_collector
    st = c.enroll()
    p = certs.erasure_payload(st.key, "BIG-BAD")
    p["sanitization"]["passes"] = [{"pattern": 1}] * 50_000
    body = json.dumps(env.sign_envelope(p, env.ERASURE_TYPE, st.key)).encode()
    assert 500_000 < len(body) < 1 << 20

    t0 = time.monotonic()
    r = st.upload(body)
    assert time.monotonic() - t0 < 2.0
    assert r.status_code == 422 and r.json()["reason"].startswith("schema: /sanitization/passes/0")

    stop = threading.Event()

    def station():
        while not stop.is_set():
            st.upload(body)

    threads = [threading.Thread(target=station) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        latencies = []
        for _ in range(8):
            t0 = time.monotonic()
            assert c.api("GET", "/healthz").status_code == 200
            latencies.append(time.monotonic() - t0)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert max(latencies) < 1.0, latencies


def test_the_public_verify_is_rate_limited_per_client(limited_collector):
    c = limited_collector
    codes = [c.api("POST", "/api/v1/verify", data=b"{}").status_code for _ in range(25)]
    assert codes[:20] == [200] * 20  # the burst
    assert 429 in codes[20:]
    r = c.api("POST", "/api/v1/verify", data=b"{}")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and r.json()["reason"]
    assert verify_form(c, b"{}").status_code == 429
    # Uploads and the rest of the service are not affected.
    assert c.api("GET", "/healthz").status_code == 200


def test_envelope_with_more_than_a_few_signatures_is_refused_by_the_verifier_itself():
    key = StationKey.generate()
    e = env.sign_envelope(certs.erasure_payload(key, "S"), env.ERASURE_TYPE, key)
    e["signatures"] = e["signatures"] * (env.MAX_SIGNATURES + 1)
    report = check_certificate(e, {key.key_id: key.public_key})
    assert not report.valid and report.codes == ["envelope-shape"]
    e["signatures"] = e["signatures"][:env.MAX_SIGNATURES]
    assert check_certificate(e, {key.key_id: key.public_key}).valid


# ----------------------------------------------------------------------- certificate ids

def test_a_certificate_id_taken_by_another_station_does_not_lock_out_the_genuine_certificate(open_collector):
    c = open_collector
    genuine, squatter = c.enroll(), c.enroll()
    cid = str(uuid.uuid4())
    assert squatter.upload(certs.erasure_envelope(squatter.key, "SQUAT", certificate_id=cid)).status_code == 201

    body = certs.erasure_envelope(genuine.key, "REAL-1", certificate_id=cid)
    r = genuine.upload(body)
    assert r.status_code == 201, r.text
    digest = env.envelope_digest(body)
    assert r.json()["id"] == digest and r.json()["url"] == f"/api/v1/certificates/{digest}"
    stored = c.api("GET", f"/api/v1/certificates/{digest}").json()
    assert stored["station_id"] == genuine.station_id and stored["payload"]["certificate_id"] == cid
    assert stored["verification"]["valid"] is True and stored["certificate_id"] == cid
    # Every surface names it by the id it was signed with, as its PDF does.
    page = c.api("GET", f"/certificates/{digest}").text
    assert f'id="cert-id">{cid} <span id="id-taken">' in page
    listed = c.api("GET", "/api/v1/certificates?serial=REAL-1").json()["items"]
    assert [(i["id"], i["certificate_id"]) for i in listed] == [(digest, cid)]
    csv_rows = [r for r in c.api("GET", "/lots/LOT-A?format=csv").text.split("\r\n") if ",REAL-1," in r]
    assert len(csv_rows) == 1 and csv_rows[0].startswith(cid + ",")
    again = genuine.upload(body)
    assert again.status_code == 200 and again.json()["id"] == digest
    # The squatter's row is untouched and still its own.
    assert c.api("GET", f"/api/v1/certificates/{cid}").json()["station_id"] == squatter.station_id
    # Within one station an id stays unique: the same id with other content is refused.
    other = genuine.upload(certs.erasure_envelope(genuine.key, "REAL-2", certificate_id=str(uuid.uuid4())))
    assert other.status_code == 201
    reuse = genuine.upload(certs.erasure_envelope(genuine.key, "REAL-3", certificate_id=other.json()["id"]))
    assert reuse.status_code == 422 and "different digest" in reuse.json()["reason"]


# ----------------------------------------------------------------------- lots

def test_a_certificate_naming_another_lot_than_its_stations_is_refused(open_collector):
    c = open_collector
    st = c.enroll(lot="LOT-BOUND")
    r = st.upload(certs.erasure_envelope(st.key, "L-1", lot="LOT-OTHER"))
    assert r.status_code == 422 and "enrolled for lot 'LOT-BOUND'" in r.json()["reason"]
    ok = st.upload(certs.erasure_envelope(st.key, "L-2", lot=None))
    assert ok.status_code == 201
    assert c.api("GET", f"/api/v1/certificates/{ok.json()['id']}").json()["lot"] == "LOT-BOUND"
    free = c.enroll(lot=None)
    r = free.upload(certs.erasure_envelope(free.key, "L-3", lot="LOT-OWN"))
    assert r.status_code == 201
    assert c.api("GET", f"/api/v1/certificates/{r.json()['id']}").json()["lot"] == "LOT-OWN"
    bad = free.upload(certs.erasure_envelope(free.key, "L-4", lot="two\nlines"))
    assert bad.status_code == 422 and "control characters" in bad.json()["reason"]


@pytest.mark.parametrize("lot", ["Atelier/2026/A", "X.csv", "Y.pdf", "a b?c#d%e"])
def test_any_printable_lot_name_has_its_page_and_exports(open_collector, lot):
    c = open_collector
    st = c.enroll(lot=lot)
    assert st.upload(certs.erasure_envelope(st.key, "LOTNAME-1", lot=lot)).status_code == 201
    quoted = requests_quote(lot)
    page = c.api("GET", f"/lots/{quoted}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="lot-drives">1<' in page.text
    assert f'href="/lots/{quoted}?format=csv"' in page.text
    csv = c.api("GET", f"/lots/{quoted}?format=csv")
    assert csv.status_code == 200 and csv.text.count("\r\n") == 2 and ",LOTNAME-1," in csv.text
    pdf = c.api("GET", f"/lots/{quoted}?format=pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert lot in c.api("GET", "/lots").text or lot.replace("&", "&amp;") in c.api("GET", "/lots").text


def requests_quote(s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="")


@pytest.mark.parametrize("lot", ["two\nlines", " padded", "", "x" * 201, "nul\x00"])
def test_lot_names_that_cannot_be_shown_are_refused_when_the_token_is_made(open_collector, lot):
    r = open_collector.admin("POST", "/api/v1/admin/tokens", json={"lot": lot})
    assert r.status_code == 400 and r.json()["reason"].startswith("lot: ")


def test_a_lot_report_can_be_cut_off_at_a_time(open_collector):
    c = open_collector
    st = c.enroll(lot="LOT-CUT")
    assert st.upload(certs.erasure_envelope(st.key, "CUT-1", lot="LOT-CUT")).status_code == 201
    time.sleep(1.1)
    cut = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1.1)
    assert st.upload(certs.erasure_envelope(st.key, "CUT-2", lot="LOT-CUT")).status_code == 201
    full = c.api("GET", "/lots/LOT-CUT?format=csv").text
    closed = c.api("GET", f"/lots/LOT-CUT?format=csv&until={cut}").text
    assert "CUT-1" in full and "CUT-2" in full
    assert "CUT-1" in closed and "CUT-2" not in closed
    page = c.api("GET", f"/lots/LOT-CUT?until={cut}").text
    assert 'id="lot-drives">1<' in page and 'id="lot-until"' in page
    assert c.api("GET", "/lots/LOT-CUT?until=yesterday").status_code == 400


# ----------------------------------------------------------------------- receipts

def test_every_upload_gets_a_receipt_signed_by_the_collector_and_the_agent_keeps_it(open_collector, tmp_path):
    from agent.config import CollectorConfig
    from agent.deliver.client import CollectorClient
    from agent.deliver.spool import Spool
    from agent.deliver.upload import deliver_pending

    c = open_collector
    published = c.api("GET", "/api/v1/receipt-key").json()
    trusted = {published["key_id"]: load_pem_public_key(published["public_key"].encode())}
    key = StationKey.generate()
    body = certs.erasure_envelope(key, "RCPT-1")
    spool = Spool(tmp_path / "spool").ensure()
    spool.put("certificates", "c1.json", body)
    client = CollectorClient(CollectorConfig(url=c.url, token=c.token(), retries=1, backoff_s=0.01, timeout_s=10),
                             tmp_path, key, sleep=lambda s: None, name="receipt-station")
    report = deliver_pending(spool, client)
    assert report.delivered == ["c1.json"], report

    entry = spool.entries("certificates")[0]
    receipt = spool.receipt(entry)
    assert receipt is not None
    assert (tmp_path / "spool" / "certificates" / "c1.json.receipt").exists()
    r = env.open_envelope(receipt, trusted, payload_type=env.RECEIPT_TYPE)
    stored = c.api("GET", f"/api/v1/certificates/{r['id']}").json()
    assert r["digest"] == env.envelope_digest(body) == stored["digest"]
    assert r["received_at"] == stored["received_at"] and r["station_key_id"] == key.key_id
    assert r["kind"] == "erasure" and r["collector_key_id"] == published["key_id"]
    # A receipt is not a certificate: the certificate checks refuse it.
    assert not check_certificate(receipt, trusted).valid

    # A re-upload gets a receipt for the first reception, not a new date.
    again = c.api("POST", "/api/v1/certificates", data=body,
                  headers={"Authorization": f"Bearer {client.bearer()}"}).json()
    assert again["status"] == "duplicate"
    assert env.open_envelope(again["receipt"], trusted, payload_type=env.RECEIPT_TYPE)["received_at"] == r["received_at"]


def test_the_receipt_key_is_made_once_beside_the_database_and_kept(tmp_path):
    c = start_collector(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        first = c.api("GET", "/api/v1/receipt-key").json()["key_id"]
    finally:
        stop_collector(c)
    key_file = tmp_path / "r.db.receipt-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    c = start_collector(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        assert c.api("GET", "/api/v1/receipt-key").json()["key_id"] == first
    finally:
        stop_collector(c)


@pytest.mark.parametrize("name", ["nan", "nested-900-deep", "size-10^30"])
def test_a_row_stored_before_the_canonical_check_is_shown_as_invalid_not_a_500(open_collector, name):
    """Collectors that ran the older verifier may hold such rows: their pages must still work."""
    from sqlalchemy import insert

    from harness import Certificate

    c = open_collector
    st = c.enroll()
    body = hostile.bad_envelopes(st.key)[name]
    row_id = str(uuid.uuid4())
    with c.engine.begin() as conn:
        conn.execute(insert(Certificate), dict(id=row_id, digest=env.envelope_digest(body), station_id=st.station_id,
                                               key_id=st.key.key_id, received_at=datetime.now(timezone.utc),
                                               serial="LEGACY", lot="LOT-A", outcome="success",
                                               envelope=body.decode()))
    api = c.api("GET", f"/api/v1/certificates/{row_id}")
    assert api.status_code == 200, api.text
    assert api.json()["verification"]["valid"] is False and api.json()["verification"]["reasons"]
    assert c.api("GET", f"/certificates/{row_id}").status_code == 200
