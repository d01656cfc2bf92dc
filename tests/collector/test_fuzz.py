"""Schemathesis over the collector's /openapi.json: no 5xx for any generated request, and
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
    c = start_collector(f"sqlite:///{tmp / 'fuzz.db'}", tmp, extra_args=["--no-access-log"])
    station = c.enroll()
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
    assert fuzz_target[0].api("GET", "/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_server_error_and_no_invalid_envelope_is_accepted(case, fuzz_target):
    c, station = fuzz_target
    before = c.counts()["certificates"] + c.counts()["audit_reports"]
    if "/admin/" in case.path:
        cred = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {cred}"}
    else:
        headers = {"Authorization": f"Bearer {station.bearer}"}
    case.headers = {**(case.headers or {}), **headers}
    response = case.call(base_url=c.url, timeout=30)
    assert response.status_code < 500, response.text
    if case.method == "POST" and case.path in UPLOADS:
        assert response.status_code in (400, 413, 422), response.text
        assert c.counts()["certificates"] + c.counts()["audit_reports"] == before
    if case.method == "POST" and case.path == "/api/v1/verify" and response.status_code == 200:
        assert response.json()["valid"] is False
