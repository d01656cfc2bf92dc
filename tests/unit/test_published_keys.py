"""The keys a collector publishes, as `ardoise verify --collector` reads them."""

from __future__ import annotations

import pytest

from agent.certify.keys import StationKey
from agent.certify.published_keys import parse_keys
from agent.errors import CertificateError

URL = "http://127.0.0.1:8000"


def entry(key: StationKey, **kw) -> dict:
    return {"key_id": key.key_id, "station_id": "st-1", "enrolled_at": "2026-01-01T00:00:00Z", "revoked_at": None,
            "public_pem": key.public_pem, **kw}


def test_a_certificate_signed_before_the_revocation_stays_valid_and_one_after_is_refused():
    k = StationKey.generate()
    keys = parse_keys(URL, {"keys": [entry(k, revoked_at="2026-06-01T12:00:00.123456Z")]})
    assert keys.revocation_problem(k.key_id, "2026-05-31T23:59:59Z") is None
    assert "revoked on 2026-06-01T12:00:00.123456Z" in keys.note(k.key_id)
    problem = keys.revocation_problem(k.key_id, "2026-06-01T12:00:01Z")
    assert problem.startswith("revoked-key: signed by station st-1")
    assert keys.revocation_problem(k.key_id, None).startswith("revoked-key: ")  # undated: not after the fact


def test_a_revocation_without_a_zone_is_utc_and_an_unreadable_one_refuses():
    k = StationKey.generate()
    keys = parse_keys(URL, {"keys": [entry(k, revoked_at="2026-06-01T12:00:00")]})
    assert keys.revocation_problem(k.key_id, "2026-06-01T11:59:59Z") is None
    assert keys.revocation_problem(k.key_id, "2026-06-01T12:00:00Z") is not None
    garbled = parse_keys(URL, {"keys": [entry(k, revoked_at="last tuesday")]})
    assert garbled.revocation_problem(k.key_id, "2026-06-01T11:59:59Z").startswith("revoked-key: ")


def test_a_key_enrolled_again_after_its_revocation_is_in_service():
    k = StationKey.generate()
    keys = parse_keys(URL, {"keys": [entry(k, revoked_at="2026-02-01T00:00:00Z"),
                                     entry(k, station_id="st-2", enrolled_at="2026-03-01T00:00:00Z")]})
    assert keys.revocation_problem(k.key_id, "2026-12-01T00:00:00Z") is None
    assert keys.info[k.key_id].station_id == "st-2"


@pytest.mark.parametrize("body", [[], {"keys": "x"}, {"keys": [{"key_id": "a"}]}, {"keys": [{"public_pem": "junk"}]}])
def test_an_answer_that_is_not_a_key_list_is_refused_in_one_line(body):
    with pytest.raises(CertificateError) as exc:
        parse_keys(URL, body)
    assert "\n" not in str(exc.value)


def test_a_key_published_under_another_keys_id_is_refused():
    k, other = StationKey.generate(), StationKey.generate()
    with pytest.raises(CertificateError, match="is named"):
        parse_keys(URL, {"keys": [entry(k, key_id=other.key_id)]})
