"""The donor's bundle end to end: an inventory imported, reconciled with real signed
certificates, the lot closed and its report signed by the collector key, the ZIP streamed;
``ardoise verify --bundle`` accepts it, and refuses every tampered copy with its reason."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from lot_samples import INVENTORY_CSV, sample_lot

from agent.cli import main
from agent.certify.bundle import verify_bundle
from agent.certify.envelope import envelope_digest
from agent.certify.keys import StationKey
from agent.errors import CertificateError
from server_stub.errors import Forbidden, Malformed
from server_stub.lots.bundle import BundledAudit, BundledCertificate, stream_bundle
from server_stub.lots.inventory import read_inventory
from server_stub.lots.reconcile import reconcile
from server_stub.lots.report import (Co2Factor, LotInfo, LotNotClosable, build_report, may_close, sign_report)
from server_stub.lots.report_pdf import render_report_pdf

REASON = "M6LOST was stolen during transport (police report 2026-1234)."


def _close(lot, language="fr", co2=None):
    collector = StationKey.generate()
    inv = read_inventory(INVENTORY_CSV)
    recon = reconcile(inv.devices, lot.certificate_facts(), lot.audit_facts(), lot.destructions)
    closure = may_close(recon, is_manager=True, reason=REASON)
    payload = build_report(LotInfo("REG-ARA-2026-12", "Région Auvergne-Rhône-Alpes", "Atelier Réemploi Lyon", language,
                                   "2026-11-20"), recon, lot.certificate_facts(), lot.audit_facts(),
                           collector_key_id=collector.key_id, closed_at="2026-12-05T15:00:00Z",
                           closed_by="Claire Martin", closure=closure, co2=co2)
    return collector, payload


def _bundle(lot, tmp_path, *, language="fr", name="lot.zip", payload_edit=None):
    collector, payload = _close(lot, language)
    if payload_edit:
        payload_edit(payload)
    envelope = sign_report(payload, collector)
    report_bytes = json.dumps(envelope).encode()
    pdf = render_report_pdf(payload, envelope_digest(envelope))
    certs = [BundledCertificate(envelope_digest(e), e, b"%PDF-1.4 test rendering") for _, e in lot.certificates]
    audits = [BundledAudit(envelope_digest(e), e) for _, e in lot.audits]
    path = tmp_path / name
    with open(path, "wb") as f:
        for chunk in stream_bundle(lot="REG-ARA-2026-12", donor="Région", language=language, report_envelope=report_bytes,
                                   report_pdf=pdf, collector_key=collector,
                                   station_keys={k.key_id: k.public_pem for k in lot.stations},
                                   certificates=certs, audits=audits):
            f.write(chunk)
    pem = tmp_path / "collector.pem"
    pem.write_text(collector.public_pem)
    return path, pem, collector


def _rewrite(src, dst, *, drop=(), replace=None, add=None):
    """A copy of the ZIP with members dropped, replaced or added (what a tamperer does)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for i in zin.infolist():
            if i.filename in drop:
                continue
            data = zin.read(i.filename)
            if replace and i.filename in replace:
                data = replace[i.filename]
            zout.writestr(i.filename, data)
        for n, d in (add or {}).items():
            zout.writestr(n, d)
    return dst


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    lot = sample_lot()
    path, pem, collector = _bundle(lot, tmp)
    return lot, path, pem, collector, tmp


def test_the_bundle_passes_verify_with_the_pinned_collector_key(built, capsys):
    lot, path, pem, _, _ = built
    assert main(["verify", "--bundle", str(path), "--collector-key", str(pem)]) == 0
    err = capsys.readouterr().err
    assert "valid: lot REG-ARA-2026-12, 7 devices declared, 7 certificates, 4 audit reports" in err
    assert "received 6, reused 4, recycled 1, destroyed 1; collector key pinned" in err
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        readme = z.read("README.txt").decode()
    assert len([n for n in names if n.startswith("certificates/")]) == 2 * len(lot.certificates)
    assert "ardoise verify --bundle lot.zip --collector-key" in readme and "Code de sortie 0" in readme


def test_without_a_pinned_key_the_output_says_origin_is_not_proven(built, capsys):
    _, path, _, _, _ = built
    assert main(["verify", "--bundle", str(path)]) == 0
    assert "NOT pinned" in capsys.readouterr().err


def test_another_collectors_key_is_refused(built, tmp_path, capsys):
    _, path, _, _, _ = built
    other = tmp_path / "other.pem"
    other.write_text(StationKey.generate().public_pem)
    assert main(["verify", "--bundle", str(path), "--collector-key", str(other)]) == 6
    assert "is not the collector key you gave" in capsys.readouterr().err


def _first_cert(path):
    with zipfile.ZipFile(path) as z:
        return next(n for n in z.namelist() if n.startswith("certificates/") and n.endswith(".json"))


def test_a_removed_certificate_is_refused(built, tmp_path, capsys):
    _, path, pem, _, _ = built
    name = _first_cert(path)
    bad = _rewrite(path, tmp_path / "removed.zip", drop={name})
    assert main(["verify", "--bundle", str(bad), "--collector-key", str(pem)]) == 6
    assert f"INVALID: bundle-invalid: {name} is missing (listed in the manifest)" in capsys.readouterr().err


def test_a_certificate_re_added_altered_is_refused(built, tmp_path, capsys):
    _, path, pem, _, _ = built
    name = _first_cert(path)
    with zipfile.ZipFile(path) as z:
        env = json.loads(z.read(name))
    env["payload"] = env["payload"][:-8] + ("AAAAAAA=" if not env["payload"].endswith("AAAAAAA=") else "BBBBBBB=")
    bad = _rewrite(path, tmp_path / "altered.zip", replace={name: json.dumps(env).encode()})
    assert main(["verify", "--bundle", str(bad), "--collector-key", str(pem)]) == 6
    assert f"{name} was changed" in capsys.readouterr().err


def test_a_stranger_certificate_added_is_refused(built, tmp_path, capsys):
    lot, path, pem, _, _ = built
    stranger = lot.add_certificate(lot.stations[0], "STRANGER1")
    env = lot.certificates.pop()[1]
    digest = envelope_digest(env)
    assert stranger["certificate_id"]
    bad = _rewrite(path, tmp_path / "stranger.zip", add={f"certificates/{digest}.json": env})
    assert main(["verify", "--bundle", str(bad), "--collector-key", str(pem)]) == 6
    assert f"certificates/{digest}.json is not in the manifest (added)" in capsys.readouterr().err


def test_a_report_whose_counts_do_not_add_up_is_refused_even_when_signed(tmp_path):
    lot = sample_lot()

    def lie(p):
        p["reen"]["reused"] += 1
        p["reen"]["recycled"] -= 1

    path, pem, collector = _bundle(lot, tmp_path, payload_edit=lie)
    with pytest.raises(CertificateError, match="reen.reused is 5 but 4 devices have destination reuse"):
        verify_bundle(path, {collector.key_id: collector.public_key})


def test_a_report_calling_a_failed_drive_sanitized_is_refused(tmp_path):
    lot = sample_lot()

    def lie(p):
        m4 = next(d for d in p["devices"] if d["identifier"] == "M4FAILED")
        m4["state"] = "sanitized"
        p["counts"]["sanitized"] += 1
        p["counts"]["destroyed"] -= 1

    path, _, collector = _bundle(lot, tmp_path, payload_edit=lie)
    with pytest.raises(CertificateError, match="M4FAILED is called sanitized but its drive D4"):
        verify_bundle(path, {collector.key_id: collector.public_key})


def test_a_zip_bomb_is_refused_from_the_directory_before_inflating(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("certificates/" + "a" * 64 + ".json", "w", force_zip64=True) as f:
            for _ in range(8):
                f.write(b"\0" * (1 << 20))
    with pytest.raises(CertificateError, match="unpacks to 8388608 bytes, more than such a file can be"):
        verify_bundle(bomb)


def test_a_member_lying_about_its_size_is_cut_at_the_declared_size(built, tmp_path):
    _, path, pem, collector, _ = built
    # A copy whose central directory says README.txt is 10 bytes: inflating must stop there.
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_path / "liar.zip", "w") as zout:
        for i in zin.infolist():
            zout.writestr(i, zin.read(i.filename))
    liar = bytearray((tmp_path / "liar.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "liar.zip") as z:
        i = z.getinfo("README.txt")
    pos = liar.find(b"PK\x01\x02")
    while pos >= 0:
        n = int.from_bytes(liar[pos + 28:pos + 30], "little")
        if liar[pos + 46:pos + 46 + n] == b"README.txt":
            liar[pos + 24:pos + 28] = (10).to_bytes(4, "little")
        pos = liar.find(b"PK\x01\x02", pos + 4)
    (tmp_path / "liar.zip").write_bytes(bytes(liar))
    with pytest.raises(CertificateError, match="README.txt (unpacks to more than its declared size|cannot be read|was changed)"):
        verify_bundle(tmp_path / "liar.zip", {collector.key_id: collector.public_key})
    assert i.file_size > 10


def test_closing_with_a_missing_device_needs_a_manager_and_a_reason():
    lot = sample_lot()
    inv = read_inventory(INVENTORY_CSV)
    recon = reconcile(inv.devices, lot.certificate_facts(), lot.audit_facts(), lot.destructions)
    with pytest.raises(Forbidden, match=r"1 device\(s\) missing or not sanitized \(M6LOST\): only a manager"):
        may_close(recon, is_manager=False, reason=REASON)
    with pytest.raises(LotNotClosable, match="give the reason"):
        may_close(recon, is_manager=True, reason="  ok ")
    assert may_close(recon, is_manager=True, reason=REASON).forced
    complete = reconcile(inv.devices[:5], lot.certificate_facts(), lot.audit_facts(), lot.destructions)
    assert not may_close(complete, is_manager=False).forced


def test_the_report_is_valid_json_schema_and_carries_reen_and_a_cited_co2_figure():
    import jsonschema

    from agent.certify.bundle import load_report_schema

    _, p = _close(sample_lot(), "en", co2=Co2Factor(100, "a published source, for the test"))
    jsonschema.Draft202012Validator(load_report_schema()).validate(p)
    assert p["reen"] == {"received": 6, "reused": 4, "recycled": 1, "destroyed": 1, "undecided": 0,
                         "reuse_rate_ppm": 666_666}
    assert p["co2"] == {"kg_per_reused_device": 100, "source": "a published source, for the test", "avoided_kg": 400}
    assert p["forced"] and p["closing_reason"] == REASON
    assert len(p["certificates"]) == 7 and len({c["digest"] for c in p["certificates"]}) == 7


def test_the_stream_holds_memory_to_a_file_at_a_time(tmp_path):
    """Chunks are yielded per file: the first arrives before the certificates are consumed."""
    lot = sample_lot()
    collector, payload = _close(lot)
    consumed = []

    def certs():
        for _, e in lot.certificates:
            consumed.append(1)
            yield BundledCertificate(envelope_digest(e), e, b"%PDF")

    gen = stream_bundle(lot="L", donor="D", language="en", report_envelope=json.dumps(sign_report(payload, collector)).encode(),
                        report_pdf=b"%PDF", collector_key=collector,
                        station_keys={k.key_id: k.public_pem for k in lot.stations}, certificates=certs(), audits=[])
    first = next(gen)
    assert first.startswith(b"PK") and consumed == []
    second = next(gen)
    assert len(consumed) == 1
    whole = first + second + b"".join(gen)
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert len([n for n in z.namelist() if n.startswith("certificates/")]) == 2 * len(lot.certificates)
        assert z.testzip() is None


def test_a_bundle_without_a_station_key_the_report_names_is_not_written():
    lot = sample_lot()
    collector, payload = _close(lot)
    with pytest.raises(Malformed, match="names station key"):
        next(stream_bundle(lot="L", donor="D", language="en", report_envelope=json.dumps(sign_report(payload, collector)).encode(),
                           report_pdf=b"%PDF", collector_key=collector, station_keys={}, certificates=[], audits=[]))


def test_a_certificate_whose_report_line_says_another_destination_is_refused(tmp_path):
    lot = sample_lot()

    def lie(p):
        entry = next(c for c in p["certificates"] if c["serial"] == "D7LOOSE")
        entry["destination"] = "reuse"  # it is reuse_after_check: no SMART data

    path, _, collector = _bundle(lot, tmp_path, payload_edit=lie)
    with pytest.raises(CertificateError, match="does not say what the lot report says of it"):
        verify_bundle(path, {collector.key_id: collector.public_key})


@pytest.mark.parametrize("argv,message", [
    (["--bundle", "x.zip", "cert.json"], "either --bundle ZIP or certificate FILEs"),
    (["--collector-key", "k.pem", "cert.json"], "--collector-key goes with --bundle"),
    ([], "give certificate FILEs to check, or --bundle ZIP"),
])
def test_verify_bundle_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["verify", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_collector_key_that_is_not_a_key_is_a_usage_error(built, tmp_path, capsys):
    _, path, _, _, _ = built
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    assert main(["verify", "--bundle", str(path), "--collector-key", str(junk)]) == 2
    assert "--collector-key:" in capsys.readouterr().err


def test_verify_bundle_json_output(built, capsys):
    _, path, pem, collector, _ = built
    assert main(["verify", "--bundle", str(path), "--collector-key", str(pem), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] and out["pinned"] and out["collector_key_id"] == collector.key_id
    assert out["reen"]["reuse_rate_ppm"] == 666_666


def test_a_file_that_is_not_a_zip_is_refused_in_one_line(tmp_path, capsys):
    f = tmp_path / "lot.zip"
    f.write_bytes(b"not a zip")
    assert main(["verify", "--bundle", str(f)]) == 6
    assert "is not a readable ZIP" in capsys.readouterr().err


def test_a_member_with_an_unknown_compression_method_is_refused_in_one_line(built, tmp_path, capsys):
    _, path, pem, _, _ = built
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")  # first central directory entry: its method becomes 99
    data[pos + 10:pos + 12] = (99).to_bytes(2, "little")
    bad = tmp_path / "method.zip"
    bad.write_bytes(bytes(data))
    assert main(["verify", "--bundle", str(bad), "--collector-key", str(pem)]) == 6
    err = capsys.readouterr().err
    assert "INVALID: bundle-invalid:" in err and "cannot be read" in err and "Traceback" not in err


def test_the_readme_is_in_both_languages_the_lots_first(built):
    _, path, _, _, _ = built
    with zipfile.ZipFile(path) as z:
        readme = z.read("README.txt").decode()
    assert readme.index("certificats d'effacement") < readme.index("erasure certificates and lot report")


def test_a_report_must_account_for_exactly_the_certificates_given():
    lot = sample_lot()
    inv = read_inventory(INVENTORY_CSV)
    facts = lot.certificate_facts()
    recon = reconcile(inv.devices, facts, lot.audit_facts(), lot.destructions)
    with pytest.raises(ValueError, match="accounts for 7 certificates, 6 are given"):
        build_report(LotInfo("L", "D", "W", "en", "2026-11-20"), recon, facts[1:], lot.audit_facts(),
                     collector_key_id="0" * 64, closed_at="2026-12-05T15:00:00Z", closed_by="x",
                     closure=may_close(recon, is_manager=True, reason=REASON))


def test_a_manifest_edited_to_hide_a_change_breaks_its_signature(built, tmp_path, capsys):
    import base64

    _, path, pem, _, _ = built
    name = _first_cert(path)
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
    body = json.loads(base64.b64decode(manifest["payload"]))
    del body["files"][name]
    manifest["payload"] = base64.b64encode(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).decode()
    bad = _rewrite(path, tmp_path / "manifest.zip", drop={name}, replace={"manifest.json": json.dumps(manifest).encode()})
    assert main(["verify", "--bundle", str(bad), "--collector-key", str(pem)]) == 6
    assert "manifest.json: bad-signature" in capsys.readouterr().err


@pytest.mark.parametrize("special", ["/dev/zero", "dir", "fifo"])
def test_a_device_a_directory_or_a_pipe_is_refused_without_being_read(special, tmp_path, capsys):
    import os

    path = {"/dev/zero": "/dev/zero", "dir": str(tmp_path), "fifo": str(tmp_path / "pipe")}[special]
    if special == "fifo":
        os.mkfifo(path)
    assert main(["verify", "--bundle", path]) == 6
    assert "is not a regular file" in capsys.readouterr().err
