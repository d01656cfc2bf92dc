"""The admin side against an attacker (issue 17): cross-site requests, password guessing,
weak passwords, security headers, and the API docs behind the login rule."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import requests

from harness import ADMIN_PASSWORD, ROOT, start_collector, stop_collector

EVIL = "http://127.0.0.1:1"  # another origin: same host, another port


# --------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},  # a browser without Fetch Metadata
    {"Sec-Fetch-Site": "same-site", "Origin": EVIL},  # another port of the same host is the same *site*
    {"Sec-Fetch-Site": "cross-site", "Origin": EVIL},
    {"Origin": "null"},  # a sandboxed frame or a data: page
])
def test_admin_api_writes_from_another_origin_are_refused(collector, headers):
    st = collector.enroll()
    before = collector.counts()
    revoke = collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke", headers=headers)
    assert revoke.status_code == 403, revoke.text
    token = collector.admin("POST", "/api/v1/admin/tokens", json={"lot": "EVIL"}, headers=headers)
    assert token.status_code == 403, token.text
    assert collector.counts() == before
    listed = {s["station_id"]: s for s in collector.admin("GET", "/api/v1/admin/stations").json()["items"]}
    assert listed[st.station_id]["revoked_at"] is None


def test_admin_api_refuses_form_and_text_plain_bodies(collector):
    """What an HTML form can send without a preflight: form-encoded or text/plain."""
    st = collector.enroll()
    before = collector.counts()
    r = collector.admin("POST", "/api/v1/admin/tokens", data='{"lot": "EVIL", "ttl_hours": 87600}',
                        headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["reason"]
    r = collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke", data={"x": "1"})
    assert r.status_code == 415
    assert collector.counts() == before


def test_admin_api_from_our_own_pages_and_from_scripts_still_works(collector):
    st = collector.enroll()
    same = {"Origin": collector.url, "Sec-Fetch-Site": "same-origin"}
    assert collector.admin("POST", "/api/v1/admin/tokens", json={"lot": "OK"}, headers=same).status_code == 201
    assert collector.admin("POST", "/api/v1/admin/tokens", json={"lot": "OK"}).status_code == 201  # curl, scripts
    # Behind a proxy that changes host or port, the browser's own Sec-Fetch-Site decides.
    proxied = {"Origin": "https://collector.example.org:8443", "Sec-Fetch-Site": "same-origin"}
    assert collector.admin("POST", "/api/v1/admin/tokens", json={"lot": "OK"}, headers=proxied).status_code == 201
    r = collector.admin("POST", f"/api/v1/admin/stations/{st.station_id}/revoke", headers=same)
    assert r.status_code == 200 and r.json()["revoked_at"]


def test_admin_form_posts_from_another_origin_are_refused_even_with_the_token(sqlite_collector):
    c = sqlite_collector
    session = requests.Session()
    session.auth = ("admin", ADMIN_PASSWORD)
    page = session.get(c.url + "/admin")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    before = c.counts()
    r = session.post(c.url + "/admin/tokens", data={"lot": "EVIL", "csrf": csrf}, headers={"Origin": EVIL})
    assert r.status_code == 403
    assert c.counts() == before


def test_session_cookie_is_httponly_and_samesite_strict(sqlite_collector):
    r = sqlite_collector.admin("GET", "/admin")
    cookie = r.headers["Set-Cookie"]
    assert "ardoise_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


# --------------------------------------------------------------------------- brute force


def _start(tmp_path, *args, env=None):
    return start_collector(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, extra_args=args, env_extra=env)


def test_many_wrong_passwords_lock_the_guesser_out_then_the_lock_expires(tmp_path):
    c = _start(tmp_path, "--admin-lockout", "3")
    try:
        codes = [c.api("GET", "/api/v1/admin/stations", auth=("admin", f"guess-{i:04d}")).status_code
                 for i in range(200)]
        assert codes[:9] == [401] * 9
        assert set(codes[10:]) == {429}
        locked = c.admin("GET", "/api/v1/admin/stations")  # the right password, during the lockout
        assert locked.status_code == 429 and "locked" in locked.json()["reason"]
        assert 1 <= int(locked.headers["Retry-After"]) <= 3
        time.sleep(3.2)
        assert c.admin("GET", "/api/v1/admin/stations").status_code == 200
    finally:
        stop_collector(c)


def test_guesses_spread_over_many_addresses_lock_the_account(tmp_path):
    # The collector trusts X-Forwarded-For from 127.0.0.1 (a local reverse proxy): each
    # request below looks like it comes from its own address.
    c = _start(tmp_path, "--admin-lockout", "60")
    try:
        codes = [c.api("GET", "/admin", auth=("admin", "wrong"),
                       headers={"X-Forwarded-For": f"192.0.2.{i % 250}", "X-Forwarded-Proto": "http"}).status_code
                 for i in range(100)]
        assert codes == [401] * 100  # no address failed more than its own limit...
        r = c.admin("GET", "/admin", headers={"X-Forwarded-For": "198.51.100.7"})
        assert r.status_code == 429 and "admin account" in r.text  # ...but the account is locked
        assert 50 <= int(r.headers["Retry-After"]) <= 60
    finally:
        stop_collector(c)


@pytest.mark.parametrize("password, why", [("a", "at least 12 characters"), ("short-pw", "at least 12 characters"),
                                           ("aaaaaaaaaaaaaaaa", "different characters")])
def test_a_weak_admin_password_stops_the_start_with_one_line(tmp_path, password, why):
    env = {"ARDOISE_ADMIN_PASSWORD": password, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "server_stub.cli", "serve", "--port", "1", "--db",
                        f"sqlite:///{tmp_path / 'weak.db'}"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, **env}, cwd=tmp_path)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and "Traceback" not in p.stderr, p.stderr


# --------------------------------------------------------------------------- headers, docs


def test_every_response_carries_the_security_headers(collector):
    st = collector.enroll()
    responses = [collector.api("GET", "/"), collector.api("GET", "/healthz"), collector.api("GET", "/static/style.css"),
                 collector.api("GET", "/certificates/nope"), collector.api("POST", "/api/v1/certificates", data=b"x"),
                 st.upload(b"{}"), collector.api("GET", "/admin"), collector.api("GET", "/docs")]
    for r in responses:
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, r.url
        assert not re.search(r"https?://", csp), csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_pages_load_nothing_from_another_host(collector, path):
    r = collector.api("GET", path)
    assert r.status_code == 200
    assert not re.search(r"(https?:)?//[a-z0-9]", r.text, re.I), r.text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        assert ref.startswith("/"), ref
        assert collector.api("GET", ref).status_code == 200, ref
    assert collector.api("GET", "/openapi.json").json()["info"]["title"] == "Ardoise collector"


def test_api_docs_need_the_login_when_login_is_required(tmp_path):
    c = _start(tmp_path, "--require-login")
    try:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            r = c.api("GET", path, allow_redirects=False)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), path
            assert c.admin("GET", path).status_code == 200, path
    finally:
        stop_collector(c)
