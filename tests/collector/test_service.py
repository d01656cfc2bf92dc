"""The collector as an operator runs it: CLI tokens and stations, admin off by default,
HTTPS with a test CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
import sys
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import certs
from agent.certify.keys import StationKey
from harness import ADMIN_PASSWORD, pg_schema_or_skip, start_collector, stop_collector


def cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})}, cwd=cwd)


def test_cli_token_enrolls_a_station_that_the_cli_lists_and_revokes(sqlite_collector):
    c = sqlite_collector
    db = ["--db", c.db_url]
    made = cli("token", "create", "--lot", "LOT-CLI", *db)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ardenr_") and "\n" not in token
    key = StationKey.generate()
    r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, token, name="bench-1"))
    assert r.status_code == 201 and r.json()["lot"] == "LOT-CLI"
    sid = r.json()["station_id"]
    listed = json.loads(cli("station", "list", "--json", *db).stdout)
    assert any(s["station_id"] == sid and s["name"] == "bench-1" and s["revoked_at"] is None for s in listed)
    assert "bench-1" in cli("station", "list", *db).stdout
    revoked = cli("station", "revoke", sid, *db)
    assert revoked.returncode == 0, revoked.stderr
    upload = c.api("POST", "/api/v1/certificates", data=certs.erasure_envelope(key, "SER-CLI"),
                   headers={"Authorization": "Bearer " + r.json()["bearer"]})
    assert upload.status_code == 401


def test_tokens_are_stored_hashed(sqlite_collector):
    token = cli("token", "create", "--db", sqlite_collector.db_url).stdout.strip()
    station = sqlite_collector.enroll()
    with sqlite_collector.engine.connect() as conn:
        dump = "\n".join(str(row) for t in ("enrollment_tokens", "stations")
                         for row in conn.exec_driver_sql(f"SELECT * FROM {t}"))
    for secret in (token, station.bearer):
        assert secret not in dump and secret[7:] not in dump


def test_cli_errors_are_one_line_without_traceback_or_password(tmp_path):
    for args, needle in ((("station", "revoke", "st_nope", "--db", f"sqlite:///{tmp_path}/x.db"), "no station"),
                         (("migrate", "--db", "postgresql+psycopg://nobody:sekrit@127.0.0.1:1/none"),
                          "cannot open database"),
                         (("serve", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"), "TLS file")):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode != 0
        assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "sekrit" not in r.stderr


def test_admin_is_disabled_with_a_clear_message_when_no_password_is_set(tmp_path):
    c = start_collector(f"sqlite:///{tmp_path}/c.db", tmp_path, env_extra={"ARDOISE_ADMIN_PASSWORD": ""})
    try:
        r = c.api("POST", "/api/v1/admin/tokens", json={"lot": "X"}, auth=("admin", ""))
        assert r.status_code == 503
        assert r.json()["status"] == "disabled" and "ARDOISE_ADMIN_PASSWORD" in r.json()["reason"]
        page = c.api("GET", "/admin")
        assert page.status_code == 503 and "admin is disabled" in page.text
        assert c.api("GET", "/").status_code == 200  # everything else works
    finally:
        stop_collector(c)


# --------------------------------------------------------------------------- TLS


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_server_cert(directory, ca_name="Ardoise Test CA"):
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost, made now."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(ca_name)).issuer_name(_name(ca_name))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    return directory / "server.pem", directory / "server.key", directory / "ca.pem"


def test_upload_over_https_is_accepted_with_the_ca_bundle_and_refused_with_an_unknown_ca(tmp_path):
    server_cert, server_key, ca_bundle = make_ca_and_server_cert(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, _, other_ca = make_ca_and_server_cert(other_dir, "Someone Else's CA")
    c = start_collector(f"sqlite:///{tmp_path}/tls.db", tmp_path, tls=(server_cert, server_key, ca_bundle))
    try:
        assert c.url.startswith("https://")
        station = c.enroll()
        body = certs.erasure_envelope(station.key, "SER-TLS")
        r = requests.post(c.url + "/api/v1/certificates", data=body, headers=station.headers,
                          verify=str(ca_bundle), timeout=30)
        assert r.status_code == 201, r.text
        for verify in (str(other_ca), True):  # another CA, and the system's trust store
            with pytest.raises(requests.exceptions.SSLError):
                requests.post(c.url + "/api/v1/certificates", data=body, headers=station.headers,
                              verify=verify, timeout=30)
        assert c.counts()["certificates"] == 1
    finally:
        stop_collector(c)


def test_require_login_closes_every_page_but_the_public_verify(tmp_path):
    c = start_collector(f"sqlite:///{tmp_path}/c.db", tmp_path, extra_args=["--require-login"])
    try:
        for path in ("/", "/certificates", "/lots", "/api/v1/certificates"):
            assert c.api("GET", path).status_code == 401, path
            assert c.admin("GET", path).status_code == 200, path
        assert c.api("GET", "/verify").status_code == 200
        st = c.enroll()
        assert st.upload(certs.erasure_envelope(st.key, "SER-LOGIN")).status_code == 201  # stations unaffected
        assert c.api("POST", "/api/v1/verify", data=b"{}").json()["valid"] is False
    finally:
        stop_collector(c)


def _admin_session(c) -> tuple[requests.Session, str]:
    """A browser session on /admin: its cookie and the form token the page carries."""
    session = requests.Session()
    session.auth = ("admin", ADMIN_PASSWORD)
    page = session.get(c.url + "/admin", timeout=30)
    assert page.status_code == 200
    return session, page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def test_admin_page_creates_tokens_and_revokes_stations_with_its_form_token(sqlite_collector):
    c = sqlite_collector
    session, csrf = _admin_session(c)
    cookie = session.cookies.get("ardoise_session")
    assert cookie
    forged = session.post(c.url + "/admin/tokens", data={"lot": "LOT-FORM"})  # a cross-site form has no csrf field
    assert forged.status_code == 403
    # The token belongs to one browser session: another session's token, or the token
    # without its session cookie, is refused.
    other, other_csrf = _admin_session(c)
    assert other_csrf != csrf and other.cookies.get("ardoise_session") != cookie
    assert session.post(c.url + "/admin/tokens", data={"lot": "LOT-FORM", "csrf": other_csrf}).status_code == 403
    assert c.admin("POST", "/admin/tokens", data={"lot": "LOT-FORM", "csrf": csrf}).status_code == 403
    assert session.post(c.url + "/admin/tokens", data={"lot": "LOT-FORM", "csrf": "é" * 64}).status_code == 403
    made = session.post(c.url + "/admin/tokens", data={"lot": "LOT-FORM", "csrf": csrf})
    assert made.status_code == 200
    token = made.text.split('<pre id="new-token">', 1)[1].split("<", 1)[0]
    key = StationKey.generate()
    r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, token))
    assert r.status_code == 201 and r.json()["lot"] == "LOT-FORM"
    sid = r.json()["station_id"]
    revoked = session.post(c.url + f"/admin/stations/{sid}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200 and f"Station {sid} revoked" in revoked.text
    assert c.api("POST", "/api/v1/progress", json={"device": "/dev/sda"},
                 headers={"Authorization": "Bearer " + r.json()["bearer"]}).status_code == 401


@pytest.mark.postgres
def test_two_collector_processes_share_one_postgresql(tmp_path):
    schema = pg_schema_or_skip()
    a = b = None
    try:
        a = start_collector(schema.url, tmp_path)
        b = start_collector(schema.url, tmp_path)  # finds the schema A created, and serves it too
        st = a.enroll()  # enrolled through A, known to B
        body = certs.erasure_envelope(st.key, "SER-SHARED")
        codes: list[int] = []
        barrier = threading.Barrier(8)

        def send(c):
            barrier.wait()
            codes.append(c.api("POST", "/api/v1/certificates", data=body, headers=st.headers).status_code)

        threads = [threading.Thread(target=send, args=(a if i % 2 else b,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200] * 7 + [201]
        assert a.counts()["certificates"] == 1
        r = b.api("POST", "/api/v1/progress", headers=st.headers, json={"device": "/dev/sdm", "serial": "SER-LIVE-B"})
        assert r.status_code == 202
        assert "SER-LIVE-B" in a.api("GET", "/dashboard/live").text  # one dashboard for every process
    finally:
        for c in (a, b):
            if c is not None:
                stop_collector(c)
        schema.drop()


def test_agent_client_enrolls_and_uploads_over_https_with_its_ca_bundle_and_refuses_an_unknown_ca(tmp_path):
    from agent.config import CollectorConfig
    from agent.deliver.client import CollectorClient, Unreachable

    server_cert, server_key, ca_bundle = make_ca_and_server_cert(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, _, other_ca = make_ca_and_server_cert(other_dir, "Someone Else's CA")
    c = start_collector(f"sqlite:///{tmp_path}/agent.db", tmp_path, tls=(server_cert, server_key, ca_bundle))
    try:
        key = StationKey.generate()
        token = c.token("LOT-AGENT")
        good = CollectorClient(CollectorConfig(url=c.url, token=token, ca_bundle=str(ca_bundle), retries=0),
                               tmp_path / "state-good", key, sleep=lambda s: None)
        answer = good.upload(certs.erasure_envelope(key, "SER-AGENT-TLS", lot=None))
        assert (answer.http_status, answer.status) == (201, "stored")
        again = good.upload(certs.erasure_envelope(key, "SER-AGENT-TLS-2", lot=None))
        assert again.http_status == 201  # the stored bearer is reused, no second enrollment
        assert c.counts()["stations"] == 1 and c.counts()["certificates"] == 2

        stranger = CollectorClient(CollectorConfig(url=c.url, token=token, ca_bundle=str(other_ca), retries=0),
                                   tmp_path / "state-bad", key, sleep=lambda s: None)
        with pytest.raises(Unreachable, match="TLS"):
            stranger.upload(certs.erasure_envelope(key, "SER-AGENT-TLS-3", lot=None))
        assert c.counts()["certificates"] == 2
    finally:
        stop_collector(c)
