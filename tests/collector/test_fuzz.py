"""Schemathesis over the collector's /openapi.json, as nobody, as a station, as the Basic
admin and as a workshop manager logged in with a session (about 40 s): no 5xx for any generated request, and
no invalid envelope ever accepted (a fuzzer cannot forge an Ed25519 signature, so every
upload it makes must be refused, even with a valid station bearer)."""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from harness import ADMIN_PASSWORD, start_collector, stop_collector

UPLOADS = ("/api/v1/certificates", "/api/v1/audits")


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    c = start_collector(f"sqlite:///{tmp / 'fuzz.db'}", tmp, extra_args=["--no-access-log", "--verify-rate", "0"])
    station = c.enroll()
    # A workshop manager with a session: the people's side of every admin operation.
    from hub import PASSWORD, cli, login, ok

    ok(cli("org", "create", "Atelier Fuzz", "--kind", "workshop", db_url=c.db_url))
    ok(cli("user", "create", "manager@example.org", "--org", "Atelier Fuzz", "--role", "manager",
           db_url=c.db_url, stdin=PASSWORD + "\n"))
    station.session = login(c, "manager@example.org").cookies.get("ardoise_login")
    assert c.api("GET", "/api/v1/admin/stations", cookies={"ardoise_login": station.session}).status_code == 200
    yield c, station
    stop_collector(c)


def _openapi_document() -> dict:
    # The same document the server serves at /openapi.json (checked below); built in-process
    # because the tests are generated at collection time, before any server runs.
    from server_stub.app import create_app
    from server_stub.settings import Settings

    return create_app(Settings(db_url="sqlite://")).openapi()


OPENAPI = _openapi_document()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_fuzzed_document_is_the_one_the_server_serves(fuzz_target):
    assert fuzz_target[0].admin("GET", "/openapi.json").json() == OPENAPI


IDENTITIES = ("anonymous", "station", "admin", "manager")


def _authorization(identity: str, station) -> dict:
    if identity == "station":
        return {"Authorization": f"Bearer {station.bearer}"}
    if identity == "manager":
        return {"Cookie": f"ardoise_login={station.session}"}
    if identity == "admin":
        cred = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        return {"Authorization": f"Basic {cred}"}
    return {}


@pytest.mark.parametrize("identity", IDENTITIES)
@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_server_error_and_no_invalid_envelope_is_accepted(case, fuzz_target, identity):
    """Every operation, as nobody, as an enrolled station and as the admin: an identity gets
    past the authentication checks, so the fuzzer reaches the code behind them."""
    c, station = fuzz_target
    before = c.counts()["certificates"] + c.counts()["audit_reports"]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = {**headers, **_authorization(identity, station)}
    response = case.call(base_url=c.url, timeout=30)
    assert response.status_code < 500, response.text
    if case.method == "POST" and case.path in UPLOADS:
        allowed = (400, 413, 422) if identity == "station" else (400, 401, 413)
        assert response.status_code in allowed, response.text
        assert c.counts()["certificates"] + c.counts()["audit_reports"] == before
    if case.method == "POST" and case.path == "/api/v1/verify" and response.status_code == 200:
        assert response.json()["valid"] is False
