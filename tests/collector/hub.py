"""A collector as the hub of a reuse chain, for the access tests: a coordinator, two
workshops (Nord, Sud), two donors, one lot each, people in each role, and per workshop a
station with a certificate, an audit report and a live drive."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field

import requests

import certs
from harness import Collector, EnrolledStation

PASSWORD = "correct horse battery staple"
PEOPLE = {  # email: (organisation, role)
    "coord@example.org": ("Coordination", "admin"),
    "nord-tech@example.org": ("Atelier Nord", "technician"),
    "nord-manager@example.org": ("Atelier Nord", "manager"),
    "sud-tech@example.org": ("Atelier Sud", "technician"),
    "region-a@example.org": ("Région A", "donor-viewer"),
}


def cli(*args, db_url: str, stdin: str | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub.cli", *args, "--db", db_url], capture_output=True,
                          text=True, timeout=60, input=stdin, env={**os.environ, **(env or {})})


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    return r


@dataclass
class Side:
    """What one workshop holds."""

    lot: str
    station: EnrolledStation
    certificate_id: str
    audit_id: str
    serial: str
    live_serial: str


@dataclass
class Hub:
    c: Collector
    nord: Side
    sud: Side
    sessions: dict = field(default_factory=dict)

    def login(self, email: str) -> requests.Session:
        if email not in self.sessions:
            self.sessions[email] = login(self.c, email)
        return self.sessions[email]

    def get(self, email: str | None, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        kw.setdefault("allow_redirects", False)
        if email is None:
            return requests.get(self.c.url + path, **kw)
        return self.login(email).get(self.c.url + path, **kw)


def form_token(html: str) -> str:
    return html.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def login(c: Collector, email: str, password: str = PASSWORD, **headers) -> requests.Session:
    s = requests.Session()
    page = s.get(c.url + "/login", timeout=30)
    assert page.status_code == 200, page.text
    r = s.post(c.url + "/login", data={"email": email, "password": password, "csrf": form_token(page.text),
                                       "next": "/"}, headers=headers, timeout=30, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


def _side(c: Collector, workshop: str, lot: str, tag: str) -> Side:
    r = c.admin("POST", "/api/v1/admin/tokens", json={"lot": lot, "workshop": workshop})
    assert r.status_code == 201, r.text
    from agent.certify.keys import StationKey

    key = StationKey.generate()
    r = c.api("POST", "/api/v1/stations", json=c.enrollment(key, r.json()["token"], name=f"station-{tag}"))
    assert r.status_code == 201, r.text
    st = EnrolledStation(c, key, r.json()["station_id"], r.json()["bearer"])
    serial = f"SER-{tag}-1"
    up = st.upload(certs.erasure_envelope(key, serial, lot=lot))
    assert up.status_code == 201, up.text
    audit = st.upload(certs.audit_envelope(key, [serial], lot=lot), "/api/v1/audits")
    assert audit.status_code == 201, audit.text
    live = f"LIVE-{tag}"
    side = Side(lot, st, up.json()["id"], audit.json()["id"], serial, live)
    report_progress(side)
    return side


def report_progress(side: Side) -> None:
    """The side's station reports a running wipe now: a report older than the collector's
    progress timeout (60 s) leaves the live view, which a slow walk of every page can outlast."""
    assert side.station.collector.api(
        "POST", "/api/v1/progress", headers=side.station.headers,
        json={"device": "/dev/sdq", "serial": side.live_serial, "bytes_done": 1, "bytes_total": 9}).status_code == 202


def build(c: Collector) -> Hub:
    db = c.db_url
    for name, kind in (("Coordination", "coordinator"), ("Atelier Nord", "workshop"), ("Atelier Sud", "workshop"),
                       ("Région A", "donor"), ("Région B", "donor")):
        ok(cli("org", "create", name, "--kind", kind, db_url=db))
    ok(cli("lot", "create", "LOT-N1", "--workshop", "Atelier Nord", "--donor", "Région A", "--received",
           "2026-11-02", db_url=db))
    ok(cli("lot", "create", "LOT-S1", "--workshop", "Atelier Sud", "--donor", "Région B", "--language", "en",
           db_url=db))
    nord = _side(c, "Atelier Nord", "LOT-N1", "NORD")
    sud = _side(c, "Atelier Sud", "LOT-S1", "SUD")
    for email, (org, role) in PEOPLE.items():
        ok(cli("user", "create", email, "--org", org, "--role", role, db_url=db, stdin=PASSWORD + "\n"))
    return Hub(c, nord, sud)
