"""Organisations, people and what each sees (issue 13): a workshop never sees another
workshop's lot, on any page or export; a donor sees its own lots; the coordinator sees
everything; logins are CSRF-protected, locked out after guesses, and audited."""

from __future__ import annotations

import base64
import json
import zipfile
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import create_engine, text

import certs
import hub as hubmod
from harness import fixture_database, pg_schema_or_skip, start_collector, stop_collector
from hub import PASSWORD, cli, form_token, login, ok, report_progress

from server_stub.models import SCHEMA_VERSION


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hub")
    schema = None
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'hub.db'}"
    else:
        schema = pg_schema_or_skip()
        db_url = schema.url
    c = start_collector(db_url, tmp)
    try:
        yield hubmod.build(c)
    finally:
        stop_collector(c)
        if schema:
            schema.drop()


def side_urls(side) -> list[str]:
    """Every page and export that shows one workshop's certificate, audit report or lot."""
    lot = quote(side.lot, safe="")
    return [f"/certificates/{side.certificate_id}", f"/certificates/{side.certificate_id}.pdf",
            f"/certificates/{side.certificate_id}.json", f"/api/v1/certificates/{side.certificate_id}",
            f"/audits/{side.audit_id}", f"/audits/{side.audit_id}.pdf", f"/api/v1/audits/{side.audit_id}",
            f"/lots/{lot}", f"/lots/{lot}?format=csv", f"/lots/{lot}?format=pdf",
            f"/audits/{side.audit_id}/label", f"/audits/{side.audit_id}/label?size=4x6&format=zpl",
            f"/labels?lot={lot}"]


def side_lists(side) -> list[str]:
    """Lists and searches that would name it."""
    return ["/", "/dashboard/live", "/certificates", f"/certificates?serial={side.serial}",
            f"/certificates?lot={quote(side.lot)}", f"/api/v1/certificates?serial={side.serial}",
            f"/api/v1/certificates?lot={quote(side.lot)}", "/api/v1/certificates", "/lots", "/api/v1/lots"]


def names_it(r: requests.Response, side, url: str = "") -> bool:
    """Whether the answer names anything of ``side``, beyond what the asker typed into the
    search (which the form shows back)."""
    body = r.text
    typed = [v for v in (side.serial, side.lot) if v in url]
    return any(s in body for s in (side.serial, side.certificate_id, side.live_serial, side.station.station_id,
                                   side.lot) if s not in typed)


def test_a_workshop_sees_its_own_lot_on_every_page_and_export_and_nothing_of_another(hub):
    for url in side_urls(hub.nord):
        r = hub.get("nord-tech@example.org", url)
        assert r.status_code == 200, (url, r.text[:300])
    for url in side_urls(hub.sud):
        r = hub.get("nord-tech@example.org", url)
        assert r.status_code == 404, (url, r.status_code)
        assert hub.sud.serial not in r.text
        # ...and the other way round.
        assert hub.get("sud-tech@example.org", url).status_code == 200, url
    for url in side_lists(hub.sud):
        r = hub.get("nord-tech@example.org", url)
        assert r.status_code == 200, url
        assert not names_it(r, hub.sud, url), url
    assert hub.get("nord-tech@example.org", "/api/v1/certificates?lot=LOT-S1").json()["total"] == 0
    # Its own live drive and certificate are there.
    report_progress(hub.nord)
    assert hub.nord.live_serial in hub.get("nord-tech@example.org", "/dashboard/live").text
    assert hub.nord.serial in hub.get("nord-tech@example.org", "/certificates").text


def test_a_donor_sees_its_lots_certificates_and_audits_but_no_station_and_no_other_lot(hub):
    donor = "region-a@example.org"
    for url in side_urls(hub.nord):
        assert hub.get(donor, url).status_code == 200, url
    for url in side_urls(hub.sud):
        assert hub.get(donor, url).status_code == 404, url
    for url in side_lists(hub.sud):
        assert not names_it(hub.get(donor, url), hub.sud, url), url
    lots = hub.get(donor, "/api/v1/lots").json()["items"]
    assert [(l["name"], l["workshop"], l["donor"]) for l in lots] == [("LOT-N1", "Atelier Nord", "Région A")]
    # Stations and live drives are a workshop's business.
    report_progress(hub.nord)
    assert hub.nord.live_serial not in hub.get(donor, "/dashboard/live").text
    assert hub.get(donor, "/admin").status_code == 403
    assert hub.get(donor, "/api/v1/admin/stations").status_code == 403


def test_the_coordinator_sees_everything(hub):
    for side in (hub.nord, hub.sud):
        for url in side_urls(side):
            assert hub.get("coord@example.org", url).status_code == 200, url
    names = {l["name"] for l in hub.get("coord@example.org", "/api/v1/lots").json()["items"]}
    assert {"LOT-N1", "LOT-S1"} <= names


def test_nobody_is_sent_to_the_login_page_or_refused_and_the_verify_page_stays_public(hub):
    for url in side_urls(hub.nord) + side_lists(hub.nord) + ["/admin", "/docs", "/openapi.json"]:
        r = hub.get(None, url)
        if url.startswith("/api/"):
            assert r.status_code == 401, url
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), url
    assert hub.get(None, "/verify").status_code == 200
    # A browser with stale admin credentials still gets the public page.
    assert hub.get(None, "/verify", auth=("admin", "stale"), headers={"X-Forwarded-For": "198.51.100.99"}
                   ).status_code == 200
    # The verify page answers on the file; the stored certificate is linked only for
    # someone allowed to see it.
    body = certs.erasure_envelope(hub.sud.station.key, "SER-VERIFY-SUD", lot="LOT-S1")
    assert hub.sud.station.upload(body).status_code == 201

    def verify(session) -> str:
        page = session.get(hub.c.url + "/verify", timeout=30)
        return session.post(hub.c.url + "/verify", files={"certificate": ("c.json", body)}, timeout=30).text

    for who, linked in ((requests.Session(), False), (hub.login("nord-tech@example.org"), False),
                        (hub.login("sud-tech@example.org"), True), (hub.login("coord@example.org"), True)):
        html = verify(who)
        assert 'id="verdict">VALID' in html
        assert ('id="stored-link"' in html) is linked


def test_a_workshop_manager_manages_only_its_own_stations(hub):
    s = hub.login("nord-manager@example.org")
    listed = s.get(hub.c.url + "/api/v1/admin/stations", timeout=30).json()["items"]
    assert [i["station_id"] for i in listed] == [hub.nord.station.station_id]
    assert hub.sud.station.station_id not in s.get(hub.c.url + "/admin", timeout=30).text
    r = s.post(hub.c.url + f"/api/v1/admin/stations/{hub.sud.station.station_id}/revoke", json={}, timeout=30)
    assert r.status_code == 404
    r = s.post(hub.c.url + "/api/v1/admin/tokens", json={"lot": "LOT-X", "workshop": "Atelier Sud"}, timeout=30)
    assert r.status_code == 403
    r = s.post(hub.c.url + "/api/v1/admin/tokens", json={"lot": "LOT-N2"}, timeout=30)  # its only workshop
    assert r.status_code == 201, r.text
    # A technician manages nothing.
    assert hub.get("nord-tech@example.org", "/admin").status_code == 403
    assert hub.login("nord-tech@example.org").post(hub.c.url + "/api/v1/admin/tokens", json={},
                                                   timeout=30).status_code == 403


def test_administrative_acts_are_in_the_audit_log_shown_to_admins_only(hub):
    events = hub.get("coord@example.org", "/api/v1/admin/events").json()["items"]
    tags = [(e["tag"], e["actor"]) for e in events]
    assert ("token:create", "admin (Basic)") in tags
    assert ("org:create", "cli") in tags and ("user:create", "cli") in tags and ("lot:create", "cli") in tags
    assert ("session:login", "coord@example.org") in tags
    login_event = next(e for e in events if e["tag"] == "session:login")
    assert login_event["client"] == "127.0.0.1" and login_event["at"].endswith("Z")
    page = hub.get("coord@example.org", "/admin/events")
    assert page.status_code == 200 and "token:create" in page.text
    assert hub.get("nord-manager@example.org", "/admin/events").status_code == 403
    assert hub.get("nord-manager@example.org", "/api/v1/admin/events").status_code == 403
    # Append-only: nothing in the collector offers to change it.
    paths = hub.c.admin("GET", "/openapi.json").json()["paths"]
    assert set(paths["/api/v1/admin/events"]) == {"get"}


def test_login_needs_the_form_token_and_our_origin_and_a_new_session_after_it(hub):
    c = hub.c
    s = requests.Session()
    page = s.get(c.url + "/login", timeout=30)
    token = form_token(page.text)
    before = s.cookies.get("ardoise_session")
    data = {"email": "nord-tech@example.org", "password": PASSWORD, "next": "/"}
    assert s.post(c.url + "/login", data=data, timeout=30, allow_redirects=False).status_code == 403
    assert s.post(c.url + "/login", data={**data, "csrf": token}, headers={"Origin": "http://evil.example"},
                  timeout=30, allow_redirects=False).status_code == 403
    r = s.post(c.url + "/login", data={**data, "csrf": token, "next": "//evil.example/x"}, timeout=30,
               allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # never an open redirect
    cookie = next(k for k in s.cookies if k.name == "ardoise_login")
    assert cookie.has_nonstandard_attr("HttpOnly") and "strict" in str(r.headers.get("set-cookie")).lower()
    assert s.cookies.get("ardoise_session") != before  # the form-token session rotated
    # Logout: needs the token too, and the session is over on the server, not just forgotten.
    stolen = s.cookies.get("ardoise_login")
    home = s.get(c.url + "/", timeout=30)
    assert home.status_code == 200 and "nord-tech@example.org" in home.text
    assert s.post(c.url + "/logout", data={}, timeout=30, allow_redirects=False).status_code == 403
    out = s.post(c.url + "/logout", data={"csrf": form_token(home.text)}, timeout=30, allow_redirects=False)
    assert out.status_code == 303
    replay = requests.get(c.url + "/", cookies={"ardoise_login": stolen}, timeout=30, allow_redirects=False)
    assert replay.status_code == 303  # to the login page


def test_wrong_passwords_lock_the_guesser_out_even_with_the_right_one(hub):
    c = hub.c
    s = requests.Session()
    token = form_token(s.get(c.url + "/login", timeout=30).text)
    away = {"X-Forwarded-For": "198.51.100.23"}  # its own address: the other tests keep theirs
    codes = [s.post(c.url + "/login", data={"email": "sud-tech@example.org", "password": f"guess-{i}",
                                            "csrf": token}, headers=away, timeout=30,
                    allow_redirects=False).status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    right = s.post(c.url + "/login", data={"email": "sud-tech@example.org", "password": PASSWORD, "csrf": token},
                   headers=away, timeout=30, allow_redirects=False)
    assert right.status_code == 429 and "Retry-After" in right.headers
    # An unknown email is answered in the same words.
    other = requests.Session()
    tok = form_token(other.get(c.url + "/login", timeout=30).text)
    r = other.post(c.url + "/login", data={"email": "nobody@example.org", "password": "x", "csrf": tok},
                   timeout=30, allow_redirects=False)
    assert r.status_code == 401 and "wrong email or password" in r.text


def test_the_openapi_document_says_who_may_call_what(hub):
    paths = hub.c.admin("GET", "/openapi.json").json()["paths"]
    assert "**Who:**" in paths["/api/v1/certificates"]["get"]["description"]
    assert "workshop's admins and managers" in paths["/api/v1/admin/tokens"]["post"]["description"]
    assert {"session": []} in paths["/api/v1/admin/stations"]["get"]["security"]


def test_two_workshops_may_each_have_a_lot_of_the_same_name(hub):
    c = hub.c
    serials = {}
    for workshop in ("Atelier Nord", "Atelier Sud"):
        token = c.admin("POST", "/api/v1/admin/tokens", json={"lot": "SHARED", "workshop": workshop}).json()["token"]
        from agent.certify.keys import StationKey

        key = StationKey.generate()
        r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, token))
        st = hubmod.EnrolledStation(c, key, r.json()["station_id"], r.json()["bearer"])
        serials[workshop] = f"SER-SHARED-{workshop[-3:].upper()}"
        assert st.upload(certs.erasure_envelope(key, serials[workshop], lot="SHARED")).status_code == 201
    nord_csv = hub.get("nord-tech@example.org", "/lots/SHARED?format=csv").text
    assert serials["Atelier Nord"] in nord_csv and serials["Atelier Sud"] not in nord_csv
    lots = [l for l in hub.get("coord@example.org", "/api/v1/lots").json()["items"] if l["name"] == "SHARED"]
    assert sorted(l["workshop"] for l in lots) == ["Atelier Nord", "Atelier Sud"]
    page = hub.get("coord@example.org", "/lots").text
    nord_id = page.split('href="/lots/SHARED?workshop=', 1)[1].split('"', 1)[0]
    one = hub.get("coord@example.org", f"/lots/SHARED?format=csv&workshop={nord_id}").text
    both = hub.get("coord@example.org", "/lots/SHARED?format=csv").text
    assert serials["Atelier Sud"] not in one and serials["Atelier Nord"] in one
    assert serials["Atelier Sud"] in both and serials["Atelier Nord"] in both


def test_hostile_values_on_the_new_surfaces_are_4xx_never_5xx(hub):
    c = hub.c
    s = requests.Session()
    token = form_token(s.get(c.url + "/login", timeout=30).text)
    away = {"X-Forwarded-For": "198.51.100.77"}
    for email, password in (("a%00b%40example.org", quote(PASSWORD)), ("x" * 5000, quote(PASSWORD)),
                            ("nord-tech%40example.org", "%ED%B2%80%FF%FE"), ("%ED%A0%80", "x")):
        body = f"email={email}&password={password}&csrf={token}"
        r = s.post(c.url + "/login", data=body, timeout=30, allow_redirects=False,
                   headers={**away, "Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 401, (email, r.status_code)
    for workshop in (10**30, -1, "\x00", "\ud800", "W" * 500, True, [1]):
        r = c.admin("POST", "/api/v1/admin/tokens", json={"lot": "L", "workshop": workshop})
        assert 400 <= r.status_code < 500, (workshop, r.status_code, r.text)
    for q in ("workshop=1000000000000000000000000000000", "workshop=-1", "workshop=abc"):
        assert hub.get("coord@example.org", f"/lots/LOT-N1?{q}").status_code == 400, q


def test_a_disabled_person_is_logged_out_everywhere_and_cannot_log_in(hub):
    c = hub.c
    ok(cli("user", "create", "leaver@example.org", "--org", "Atelier Sud", "--role", "technician",
           db_url=c.db_url, stdin=PASSWORD + "\n"))
    s = login(c, "leaver@example.org")
    assert s.get(c.url + "/lots", timeout=30, allow_redirects=False).status_code == 200
    ok(cli("user", "disable", "leaver@example.org", db_url=c.db_url))
    assert s.get(c.url + "/lots", timeout=30, allow_redirects=False).status_code == 303
    fresh = requests.Session()
    token = form_token(fresh.get(c.url + "/login", timeout=30).text)
    r = fresh.post(c.url + "/login", data={"email": "leaver@example.org", "password": PASSWORD, "csrf": token},
                   headers={"X-Forwarded-For": "198.51.100.88"}, timeout=30, allow_redirects=False)
    assert r.status_code == 401
    listed = {p["email"]: p for p in json.loads(ok(cli("user", "list", "--json", db_url=c.db_url)).stdout)}
    assert listed["leaver@example.org"]["disabled"] is True
    assert listed["region-a@example.org"]["roles"] == [{"organisation": "Région A", "role": "donor-viewer"}]
    tags = [e["tag"] for e in hub.get("coord@example.org", "/api/v1/admin/events").json()["items"]]
    assert "user:disable" in tags


def test_a_closed_lot_takes_no_new_station(hub):
    with hub.c.engine.begin() as conn:
        conn.execute(text("UPDATE lots SET status = 'closed' WHERE name = 'LOT-S1'"))
    try:
        r = hub.c.admin("POST", "/api/v1/admin/tokens", json={"lot": "LOT-S1", "workshop": "Atelier Sud"})
        assert r.status_code == 409 and "closed" in r.json()["reason"]
    finally:
        with hub.c.engine.begin() as conn:
            conn.execute(text("UPDATE lots SET status = 'open' WHERE name = 'LOT-S1'"))


def test_a_workshop_manager_creates_its_lots_by_api_and_form_and_the_donor_sees_them(hub):
    c = hub.c
    s = hub.login("nord-manager@example.org")
    r = s.post(c.url + "/api/v1/admin/lots", json={"name": "LOT-N-API", "donor": "Région A", "language": "en",
                                                   "received_on": "2026-11-20"}, timeout=30)
    assert r.status_code == 201, r.text
    r = s.post(c.url + "/api/v1/admin/lots", json={"name": "LOT-X", "workshop": "Atelier Sud"}, timeout=30)
    assert r.status_code == 403
    assert s.post(c.url + "/api/v1/admin/lots", json={"name": "LOT-N-API"}, timeout=30).status_code == 409
    assert s.post(c.url + "/api/v1/admin/lots", json={"name": "L", "received_on": "20/11/2026"},
                  timeout=30).status_code == 400
    assert s.post(c.url + "/api/v1/admin/lots", data='{"name": "EVIL"}', timeout=30,
                  headers={"Content-Type": "text/plain"}).status_code == 415
    page = s.get(c.url + "/admin", timeout=30).text
    donor_id = page.split('<option value="', 2)[2].split('"', 1)[0]  # after "None yet": Région A
    form = {"csrf": form_token(page), "name": "LOT-N-FORM", "donor": donor_id, "language": "fr",
            "received_on": "2026-11-21"}
    assert s.post(c.url + "/admin/lots", data={**form, "csrf": ""}, timeout=30).status_code == 403
    made = s.post(c.url + "/admin/lots", data=form, timeout=30)
    assert made.status_code == 200 and "Lot LOT-N-FORM created." in made.text
    mine = {l["name"]: l for l in hub.get("region-a@example.org", "/api/v1/lots").json()["items"]}
    assert mine["LOT-N-API"]["language"] == "en" and mine["LOT-N-API"]["received_on"] == "2026-11-20"
    assert mine["LOT-N-FORM"]["donor"] == "Région A" and mine["LOT-N-FORM"]["workshop"] == "Atelier Nord"
    assert "LOT-N-FORM" not in hub.get("sud-tech@example.org", "/lots").text
    events = hub.get("coord@example.org", "/api/v1/admin/events").json()["items"]
    assert any(e["tag"] == "lot:create" and e["actor"] == "nord-manager@example.org"
               and e["detail"]["lot"] == "LOT-N-FORM" for e in events)


# ----------------------------------------------------------------------------- the command line

def test_user_create_takes_the_password_from_stdin_never_argv_and_refuses_a_weak_one(tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    weak = cli("user", "create", "first@example.org", db_url=db, stdin="short\n")
    assert weak.returncode != 0 and "at least 12 characters" in weak.stderr and "Traceback" not in weak.stderr
    made = ok(cli("user", "create", "first@example.org", db_url=db, stdin=PASSWORD + "\n"))
    assert "admin of Coordinator" in made.stderr
    assert cli("user", "create", "x@example.org", "--password", PASSWORD, db_url=db).returncode == 2
    engine = create_engine(db)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
        kinds = conn.execute(text("SELECT name, kind FROM organisations ORDER BY id")).all()
    engine.dispose()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert [tuple(k) for k in kinds] == [("Default workshop", "workshop"), ("Coordinator", "coordinator")]
    ok(cli("org", "create", "Région", "--kind", "donor", db_url=db))
    for args, needle in ((("org", "create", "X", "--kind", "workshop"), None),
                         (("org", "create", "X", "--kind", "workshop"), "exists already"),
                         (("lot", "create", "L1", "--workshop", "X", "--donor", "Nope"), "no organisation Nope"),
                         (("lot", "create", "L1", "--received", "02/11/2026"), "not a date"),
                         (("lot", "create", "L1"), "several"),
                         (("token", "create", "--lot", "L1"), "several"),
                         (("token", "create", "--lot", "L1", "--workshop", "Région"), "no workshop"),
                         (("token", "create", "--lot", "L1", "--workshop", "X"), None),
                         (("lot", "create", "L1", "--workshop", "X"), "has a lot 'L1' already"),
                         (("user", "grant", "first@example.org", "--org", "X", "--role", "donor-viewer"),
                          "roles admin, manager, technician")):
        r = cli(*args, db_url=db)
        if needle is None:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ----------------------------------------------------------------------------- upgrade

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema_1_db(request, tmp_path):
    """A database of schema 1. collector-schema-v1.db was made by the collector of commit
    65b10d1 (schema 1): three stations (lots LOT-A, LOT-B, none), five certificates, an
    audit report, a live drive and an unused token for LOT-C. On PostgreSQL, its tables
    (as reflected from that file) and rows are copied into a fresh schema."""
    yield from fixture_database(request, tmp_path, "collector-schema-v1.db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema_2_db(request, tmp_path):
    """A database of schema 2. collector-schema-v2.db was made by the collector of commit
    885a658 (schema 2): a station of lot LOT-N that uploaded the audit report of a machine
    with no disk (storage no_disk_found) and of a machine with its certificate; a station
    without a lot that uploaded an audit report naming LOT-F and one naming no lot."""
    yield from fixture_database(request, tmp_path, "collector-schema-v2.db")



def test_a_schema_1_database_upgrades_into_the_default_workshop_and_loses_nothing(schema_1_db, tmp_path):
    db = schema_1_db
    engine = create_engine(db)
    tables = ("certificates", "audit_reports", "audit_disks", "stations", "enrollment_tokens", "live_progress")

    with engine.connect() as conn:  # the columns of schema 1: later steps add some
        columns = {t: ", ".join(conn.execute(text(f"SELECT * FROM {t} LIMIT 0")).keys()) for t in tables}

    def snapshot() -> dict:
        with engine.connect() as conn:
            return {t: sorted(tuple(str(v) for v in r) for r in conn.execute(text(f"SELECT {columns[t]} FROM {t}")))
                    for t in tables}

    before = snapshot()
    assert len(before["certificates"]) == 5
    r = ok(cli("migrate", db_url=db))
    assert f"schema version {SCHEMA_VERSION}" in r.stderr
    after = snapshot()
    for t in tables:  # every row kept, every old column unchanged (new columns come last)
        assert len(after[t]) == len(before[t]), t
        if t not in ("stations", "enrollment_tokens", "audit_reports"):
            assert after[t] == before[t], t
    assert [r[:len(before["audit_reports"][0])] for r in after["audit_reports"]] == before["audit_reports"]
    with engine.connect() as conn:
        assert [tuple(x) for x in conn.execute(text("SELECT name, kind FROM organisations"))] == \
            [("Default workshop", "workshop")]
        assert conn.execute(text("SELECT count(*) FROM stations WHERE org_id IS NULL")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM enrollment_tokens WHERE org_id IS NULL")).scalar() == 0
        lots = conn.execute(text("SELECT name, status, donor_id FROM lots ORDER BY name")).all()
        versions = [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY version"))]
    engine.dispose()
    assert [tuple(x) for x in lots] == [("LOT-A", "open", None), ("LOT-B", "open", None), ("LOT-C", "open", None)]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert ok(cli("migrate", db_url=db))  # a second run changes nothing
    # Served as before: the pages read openly (no account yet), the lots are there.
    c = start_collector(db, tmp_path)
    try:
        assert c.api("GET", "/lots/LOT-A").status_code == 200
        listed = {l["name"]: l for l in c.api("GET", "/api/v1/lots").json()["items"]}
        assert listed["LOT-A"]["workshop"] == "Default workshop" and listed["LOT-A"]["certificates"] == 3
        assert listed["LOT-C"]["certificates"] == 0
        assert c.api("GET", "/api/v1/certificates").json()["total"] == 5
        # New tokens and stations join the default workshop.
        st = c.enroll(lot="LOT-D")
        assert st.upload(certs.erasure_envelope(st.key, "SER-AFTER", lot="LOT-D")).status_code == 201
        assert c.admin("GET", "/api/v1/admin/stations").json()["items"][-1]["workshop"] == "Default workshop"
    finally:
        stop_collector(c)


def test_a_schema_2_database_files_each_audit_report_under_its_lot_and_a_diskless_machine_is_found(
        schema_2_db, tmp_path):
    db = schema_2_db
    engine = create_engine(db)
    with engine.connect() as conn:
        before = sorted(tuple(str(v) for v in r) for r in conn.execute(text("SELECT * FROM audit_reports")))
    assert len(before) == 4
    assert f"schema version {SCHEMA_VERSION}" in ok(cli("migrate", db_url=db)).stderr
    with engine.connect() as conn:
        after = sorted(tuple(str(v) for v in r) for r in conn.execute(text("SELECT * FROM audit_reports")))
        lots = dict(conn.execute(text("SELECT envelope, lot FROM audit_reports")).all())
        versions = [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY version"))]
    engine.dispose()
    assert versions == list(range(2, SCHEMA_VERSION + 1))
    assert [r[:len(before[0])] for r in after] == before  # nothing lost or changed
    by_machine = {_machine_serial(envelope): lot for envelope, lot in lots.items()}
    # The payload's lot, else the station's; a report naming none on a station with none stays in none.
    assert by_machine == {"M3NODISK": "LOT-N", "PF1AAAA": "LOT-N", "M9": "LOT-F", "M10": None}
    assert ok(cli("migrate", db_url=db))  # a second run changes nothing

    # The machine with no disk is in its lot's reconciliation, counts and signed report.
    inventory = tmp_path / "inventaire.csv"
    inventory.write_text("N° de série;Modèle\nPF1AAAA;ThinkPad T480\nM3NODISK;Chromebook 14\n", encoding="utf-8")
    ok(cli("lot", "import", "LOT-N", str(inventory), db_url=db))
    key = tmp_path / "collector-key.pem"
    r = ok(cli("lot", "close", "LOT-N", "--receipt-key", str(key), db_url=db))
    assert "closed" in r.stderr
    out = tmp_path / "lot-n.zip"
    ok(cli("lot", "bundle", "LOT-N", "--receipt-key", str(key), "-o", str(out), db_url=db))
    with zipfile.ZipFile(out) as z:
        report = json.loads(base64.b64decode(json.loads(z.read("lot-report.json"))["payload"]))
    assert {d["serial"]: d["state"] for d in report["devices"]} == {"PF1AAAA": "sanitized", "M3NODISK": "no_disk"}
    assert report["counts"]["no_disk"] == 1 and report["counts"]["missing"] == 0


def _machine_serial(envelope: str) -> str:
    return json.loads(base64.b64decode(json.loads(envelope)["payload"]))["machine"]["dmi"]["system_serial"]


# ----------------------------------------------------------------------------- units

def test_password_checks_run_a_few_at_a_time(monkeypatch):
    """argon2id costs 64 MiB a check: a spray of logins must not run dozens at once."""
    import threading
    import time

    from server_stub.accounts import service
    from server_stub.db import Database, migrate
    from server_stub.errors import Unauthorized

    db = Database("sqlite:///:memory:")
    migrate(db)
    running, peak, lock = [0], [0], threading.Lock()

    def slow_verify(hash_, password):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        raise service.VerificationError("no")

    class SlowHasher:
        verify = staticmethod(slow_verify)

    monkeypatch.setattr(service, "_HASHER", SlowHasher())

    def attempt():
        with pytest.raises(Unauthorized):
            service.check_password(db, "nobody@example.org", "guess")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.dispose()
    assert peak[0] == 2
