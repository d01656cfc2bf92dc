"""Offline check of a donor's bundle (``ardoise verify --bundle lot.zip``).

The bundle is a ZIP the collector streams when a lot is closed (docs/lots.md):

    README.txt                     how to check it (French and English)
    lot-report.json, .pdf          the lot report (DSSE, signed by the collector key)
    keys/collector.pem             the collector's public key
    keys/stations/<key id>.pem     the public key of every station that signed
    certificates/<digest>.json/.pdf every erasure certificate (DSSE, signed by a station)
    audit-reports/<digest>.json    every machine audit report (DSSE, signed by a station)
    manifest.json                  every other file's size and SHA-256 (DSSE, collector key)

Trust: the collector's key is the anchor. Pinned with ``--collector-key`` (a copy the
donor got from the collector out of band, e.g. the receipt key page), it proves who made
the bundle; without it the key inside the bundle is used and only integrity is proven,
which the output says. The collector's signature covers the manifest (so no file can be
added, removed or changed) and the report, which names the station keys and every
certificate digest; each certificate is then checked with the station keys of the bundle
that the report names, like ``ardoise verify`` checks one.

Reads are bounded: sizes come from the ZIP's central directory and are checked before
anything is inflated, and each member is read through a counting reader, so a ZIP bomb
(a lying directory included) is refused, not unpacked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from agent.bounded import CERTIFICATE_MAX, KEY_MAX, MiB
from agent import outcome
from agent.certify import envelope as env
from agent.certify.check import check_certificate
from agent.certify.keys import key_id, load_public_key
from agent.errors import CertificateError

MANIFEST = "manifest.json"
REPORT = "lot-report.json"
COLLECTOR_KEY = "keys/collector.pem"
MAX_ENTRIES = 100_000  # 5,000 devices make about 20,000 files
MAX_TOTAL = 8 << 30  # what the whole bundle may unpack to
REPORT_MAX = 256 * MiB  # a 5,000-device report is about 10 MiB
PDF_MAX = 64 * MiB
_DIGEST = r"[0-9a-f]{64}"
_NAMES = re.compile(rf"^(README\.txt|lot-report\.(json|pdf)|keys/collector\.pem|keys/stations/{_DIGEST}\.pem|"
                    rf"certificates/{_DIGEST}\.(json|pdf)|audit-reports/{_DIGEST}\.json|manifest\.json)$")

# Exit status of ``ardoise verify --bundle``: 0 valid, 6 refused (the CertificateError
# code, as for a single certificate), 2 a usage error (a bad --collector-key).
BUNDLE_INVALID = "bundle-invalid"


def refuse(message: str) -> CertificateError:
    return CertificateError(f"{BUNDLE_INVALID}: {message}", code=BUNDLE_INVALID)


@dataclass
class BundleReport:
    lot: str
    pinned: bool  # the collector key was given by the user, not taken from the bundle
    certificates: int
    audit_reports: int
    counts: dict = field(default_factory=dict)
    reen: dict = field(default_factory=dict)
    collector_key_id: str = ""


def _cap(name: str) -> int:
    if name.endswith(".pdf"):
        return PDF_MAX
    if name.endswith(".pem"):
        return KEY_MAX
    if name in (REPORT, MANIFEST):
        return REPORT_MAX
    return CERTIFICATE_MAX


class _Zip:
    """The ZIP's members, their sizes checked from the directory before any is read."""

    def __init__(self, path: str | Path) -> None:
        try:
            # Checked before opening: a FIFO would block, a device never ends (agent/bounded.py).
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise refuse(f"{path} is not a regular file (a directory, a device or a pipe)")
            self.z = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise refuse(f"{path}: no such file") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise refuse(f"{path} is not a readable ZIP ({exc})") from None
        infos = self.z.infolist()
        if len(infos) > MAX_ENTRIES:
            raise refuse(f"{len(infos)} files in the ZIP (at most {MAX_ENTRIES} are read)")
        self.info: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for i in infos:
            if i.filename in self.info:
                raise refuse(f"{i.filename} is in the ZIP twice")
            if not _NAMES.match(i.filename):
                raise refuse(f"{i.filename[:120]!r} is not a file a bundle holds (added?)")
            if i.file_size > _cap(i.filename):
                raise refuse(f"{i.filename} unpacks to {i.file_size} bytes, more than such a file can be")
            total += i.file_size
            self.info[i.filename] = i
        if total > MAX_TOTAL:
            raise refuse(f"the ZIP unpacks to {total} bytes, more than a bundle can be")

    def names(self, prefix: str, suffix: str) -> list[str]:
        return sorted(n for n in self.info if n.startswith(prefix) and n.endswith(suffix))

    def read(self, name: str) -> bytes:
        if name not in self.info:
            raise refuse(f"{name} is missing")
        return b"".join(self.chunks(name))

    def chunks(self, name: str):
        """The member's bytes, never more than its directory entry declared."""
        limit = self.info[name].file_size
        seen = 0
        try:
            with self.z.open(name) as f:
                while chunk := f.read(1 << 20):
                    seen += len(chunk)
                    if seen > limit:
                        raise refuse(f"{name} unpacks to more than its declared size")
                    yield chunk
        # CRC mismatch, truncated data; RuntimeError: an encrypted member; NotImplementedError:
        # a compression method zipfile does not know.
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise refuse(f"{name} cannot be read ({exc})") from None


def _json(data: bytes, what: str) -> Any:
    try:
        return env.parse_json(data, what)
    except CertificateError as exc:
        raise refuse(str(exc)) from None


def _key(data: bytes, name: str):
    try:
        return load_public_key(data, source=name)
    except CertificateError as exc:
        raise refuse(str(exc)) from None


def _open(data: bytes, trusted: dict, payload_type: str, what: str) -> dict:
    try:
        return env.open_envelope(data, trusted, payload_type=payload_type)
    except CertificateError as exc:
        raise refuse(f"{what}: {exc}") from None


def load_report_schema() -> dict:
    from importlib import resources

    return json.loads(resources.files("agent").joinpath("schemas", "lot-report.v1.json").read_text(encoding="utf-8"))


def verify_bundle(path: str | Path, collector_keys: dict | None = None) -> BundleReport:
    """Every check of docs/lots.md; raises ``CertificateError`` with a one-line reason."""
    z = _Zip(path)
    bundled_collector = _key(z.read(COLLECTOR_KEY), COLLECTOR_KEY)
    if collector_keys:
        if key_id(bundled_collector) not in collector_keys:
            raise refuse(f"{COLLECTOR_KEY} is not the collector key you gave (key {key_id(bundled_collector)[:16]})")
        trusted = collector_keys
    else:
        trusted = {key_id(bundled_collector): bundled_collector}

    # 1. The manifest: the collector's word on every file, so nothing can be added,
    #    removed or changed without breaking its signature or a digest.
    manifest = _open(z.read(MANIFEST), trusted, env.BUNDLE_MANIFEST_TYPE, MANIFEST)
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise refuse(f"{MANIFEST} lists no files")
    for name in z.info:
        if name != MANIFEST and name not in files:
            raise refuse(f"{name} is not in the manifest (added)")
    for name, want in sorted(files.items()):
        if name not in z.info:
            raise refuse(f"{name} is missing (listed in the manifest)")
        h = hashlib.sha256()
        for chunk in z.chunks(name):
            h.update(chunk)
        if not isinstance(want, dict) or h.hexdigest() != want.get("sha256") or z.info[name].file_size != want.get("size"):
            raise refuse(f"{name} was changed (its SHA-256 is not the manifest's)")

    # 2. The report, signed by the same collector key, valid against its schema.
    report = _open(z.read(REPORT), trusted, env.LOT_REPORT_TYPE, REPORT)
    errors = sorted(jsonschema.Draft202012Validator(load_report_schema()).iter_errors(report),
                    key=jsonschema.exceptions.relevance)
    if errors:
        where = "/" + "/".join(str(p) for p in errors[0].absolute_path)
        raise refuse(f"{REPORT}: schema: {where}: {errors[0].message}")
    if report["collector_key_id"] not in trusted:
        raise refuse(f"{REPORT} names collector key {report['collector_key_id'][:16]}, not the one that signed it")

    # 3. Station keys: exactly those the report names, each file named by its key id.
    stations = {}
    for name in z.names("keys/stations/", ".pem"):
        k = _key(z.read(name), name)
        if f"keys/stations/{key_id(k)}.pem" != name:
            raise refuse(f"{name} holds key {key_id(k)[:16]}, not the key its name says")
        stations[key_id(k)] = k
    named = set(report["station_keys"])
    if set(stations) != named:
        extra, gone = sorted(set(stations) - named), sorted(named - set(stations))
        raise refuse(f"station key {extra[0][:16]} is not named by the report" if extra
                     else f"station key {gone[0][:16]} named by the report is missing")

    # 4. Certificates and audit reports: each one valid, exactly the report's list.
    listed = {c["digest"]: c for c in report["certificates"]}
    seen: dict[str, str] = {}  # digest -> outcome: the payloads themselves are not kept
    for name in z.names("certificates/", ".json"):
        check = check_certificate(z.read(name), stations, payload_type=env.ERASURE_TYPE)
        if not check.valid:
            raise refuse(f"{name}: {check.reason}")
        if f"certificates/{check.digest}.json" != name:
            raise refuse(f"{name} holds certificate {check.digest[:16]}, not the one its name says")
        entry = listed.get(check.digest)
        if entry is None:
            raise refuse(f"{name} is not listed in the lot report (added)")
        p = check.payload or {}
        d = outcome.decision_of(p)
        if (entry["certificate_id"], entry["station_key_id"], entry["result"], entry["category"],
                entry["destination"]) != (p.get("certificate_id"), check.key_id, str(d.result), str(d.category),
                                          str(d.destination)):
            raise refuse(f"{name} does not say what the lot report says of it")
        seen[check.digest] = str(p["sanitization"]["outcome"])
    for digest in listed:
        if digest not in seen:
            raise refuse(f"certificate {digest[:16]} listed in the lot report is missing")
    audits = {a["digest"] for a in report["audit_reports"]}
    found_audits = set()
    for name in z.names("audit-reports/", ".json"):
        check = check_certificate(z.read(name), stations, payload_type=env.AUDIT_TYPE)
        if not check.valid:
            raise refuse(f"{name}: {check.reason}")
        if f"audit-reports/{check.digest}.json" != name or check.digest not in audits:
            raise refuse(f"{name} is not an audit report the lot report lists (added)")
        found_audits.add(check.digest)
    if audits - found_audits:
        raise refuse(f"audit report {sorted(audits - found_audits)[0][:16]} listed in the lot report is missing")

    counts_problem = count_problems(report, seen)
    if counts_problem:
        raise refuse(f"{REPORT}: {counts_problem}")
    return BundleReport(report["lot"]["name"], bool(collector_keys), len(seen), len(found_audits), report["counts"],
                        report["reen"], report["collector_key_id"])


def count_problems(report: dict, certificates: dict[str, str]) -> str | None:
    """The first way the report's figures fail to add up, or None. ``certificates`` maps
    each certificate's digest to the outcome its signed payload records."""
    devices, extras, c, r = report["devices"], report["extras"], report["counts"], report["reen"]
    states = ("sanitized", "no_disk", "destroyed", "not_sanitized", "missing")
    if c["declared"] != len(devices):
        return f"counts.declared is {c['declared']} but {len(devices)} devices are listed"
    for s in states:
        n = sum(1 for d in devices if d["state"] == s)
        if c[s] != n:
            return f"counts.{s} is {c[s]} but {n} devices are {s}"
    if c["extra"] != len(extras) or c["certificates"] != len(report["certificates"]) \
            or c["audit_reports"] != len(report["audit_reports"]):
        return "counts of extras, certificates or audit reports do not match the lists"
    found = [d for d in devices if d["state"] != "missing"]
    if r["received"] != len(found):
        return f"reen.received is {r['received']} but {len(found)} declared devices were found"
    for key, dest in (("reused", "reuse"), ("recycled", "recycle"), ("destroyed", "destroyed")):
        n = sum(1 for d in found if d["destination"] == dest)
        if r[key] != n:
            return f"reen.{key} is {r[key]} but {n} devices have destination {dest}"
    if r["reused"] + r["recycled"] + r["destroyed"] + r["undecided"] != r["received"]:
        return "reen: reused + recycled + destroyed + undecided is not received"
    want = r["reused"] * 1_000_000 // r["received"] if r["received"] else 0
    if r["reuse_rate_ppm"] != want:
        return f"reen.reuse_rate_ppm is {r['reuse_rate_ppm']}, not reused / received ({want})"
    audits = {a["digest"] for a in report["audit_reports"]}
    used: list[str] = []
    for d in devices + extras:
        if not set(d["audit_reports"]) <= audits:
            return f"device {d['identifier']} names an audit report the report does not list"
        for drive in d["drives"]:
            used += ([drive["certificate"]] if drive["certificate"] else []) + drive["superseded"]
            if d["state"] == "sanitized":
                if certificates.get(drive["certificate"] or "") != "success":
                    return f"device {d['identifier']} is called sanitized but its drive {drive['serial']} has no successful certificate"
    if sorted(used) != sorted(certificates):
        return "the devices' drives do not account for exactly the certificates listed"
    return None
