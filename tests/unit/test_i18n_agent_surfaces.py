"""The agent's own surfaces in French: the TUI (running and final, 80x25 and 120x40), the
certificate and machine-report PDFs. No English prose may be left (tests/english_words.py),
and the same surfaces in English must trip that check, so it cannot pass by accident.
A French certificate PDF passes ``pdf_check``, and an altered one is refused."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from pypdf import PdfReader, PdfWriter
from rich.console import Console

import certify_samples as S
from agent import i18n, tui
from agent.certify import envelope
from agent.certify.keys import StationKey
from agent.certify.payload import build_payload
from agent.certify.pdf import render_certificate_pdf, render_system_pdf
from agent.certify.pdf_check import TEXT, check_pdf
from agent.certify.pdf_embed import Proof
from agent.i18n import T_
from agent.run.pipeline import machine_summary
from english_words import english_words


@pytest.fixture
def speak():
    """Sets the agent's language for one test and puts English back."""
    before = i18n.current()

    def use(code: str) -> None:
        i18n.use_language(code)

    yield use
    i18n.use_language(before.code, before.timezone)


def _screen(view: tui.RunView, width: int, height: int) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO(), color_system=None)
    console.print(tui.render(view, page=0))
    return console.export_text()


def _view(*, finished: bool) -> tui.RunView:
    """A run as the pipeline feeds the screen, in the current language."""
    v = tui.RunView()
    v.set_machine(machine_summary(None, "5f0d7a4e-1111-4000-8000-000000000001", ["success", "failed"] if finished else []))
    rows = [
        tui.DiskRow("/dev/nvme0n1", model="SAMSUNG MZVLB256", serial="S4DXNX0M", size_bytes=256_060_514_304, smart="good"),
        tui.DiskRow("/dev/sda", model="ST500LM021", serial="W3T0ABCD", size_bytes=500_107_862_016, smart="failing"),
        tui.DiskRow("/dev/sdb", model="SanDisk Cruzer", serial="4C5300", size_bytes=16_000_000_000, state=tui.PROTECTED,
                    detail=i18n.localize(T_("boot medium: {signal}", signal="/run/live/medium"))),
    ]
    for r in rows:
        v.add_disk(r)
    v.set_delivery(collector=tui.i18n._("connecting to {url}").format(url="https://collecteur.example"), spooled=1,
                   delivered=0)
    if finished:
        v.update("/dev/nvme0n1", state=tui.PASSED, certificate_id="b58da66d-0000", detail="« Purge »",
                 advice=tui.advice_for("success", "good"))
        v.update("/dev/sda", state=tui.FAILED, certificate_id="10b6d6be-0000", detail="erreur d'entrée/sortie",
                 advice=tui.advice_for("failed", "failing"))
        v.finish(tui.i18n._("Done. Remove the drives marked {failed}; the stick holds every certificate.").format(
            failed=i18n.pgettext("verdict", "FAILED")) + " " + tui.i18n._("Press Enter to close this screen."))
    else:
        v.say(i18n.ngettext("sanitizing {count} disk", "sanitizing {count} disks", 2).format(count=2))
        v.update("/dev/nvme0n1", state=tui.WIPING, method="overwrite:zero", phase="write", pass_index=1, pass_count=1,
                 bytes_done=64_000_000_000, bytes_total=256_060_514_304, throughput_bps=1_200_000_000, eta_s=180)
        v.update("/dev/sda", state=tui.VERIFYING, method="overwrite:random", phase="verify", pass_index=1,
                 pass_count=1, bytes_done=400_000_000_000, bytes_total=500_107_862_016, throughput_bps=110_000_000,
                 eta_s=3900)
    return v


@pytest.mark.parametrize("size", [(80, 25), (120, 40)])
@pytest.mark.parametrize("finished", [False, True])
def test_french_tui_has_no_english_prose(speak, size, finished):
    speak("fr")
    text = _screen(_view(finished=finished), *size)
    assert not english_words(text), (sorted(english_words(text)), text)
    flat = " ".join(text.split())
    if finished:
        # Beside the QR code the note wraps: its words, not its line, are checked.
        assert "Appuyez" in flat and "Entrée pour fermer cet écran." in flat and "marqués ÉCHEC" in flat
        assert "à détruire (broyage ou perçage)" in flat and "prêt pour le réemploi" in flat
    else:
        assert "25 % · reste ~3 min" in flat and "1,20 Go/s" in flat and "vérification" in flat
    speak("en")
    assert len(english_words(_screen(_view(finished=finished), *size))) >= 5


def test_french_plain_log_speaks_french(speak):
    speak("fr")
    out = io.StringIO()
    v = tui.RunView()
    tui.LogDisplay(v, stream=out, every=0)
    v.add_disk(tui.DiskRow("/dev/sda", serial="W3T0ABCD", size_bytes=500_107_862_016))
    v.update("/dev/sda", state=tui.WIPING, method="overwrite:zero", phase="write", pass_index=1, pass_count=1,
             bytes_done=1, bytes_total=4, throughput_bps=110_000_000, eta_s=180)
    v.update("/dev/sda", bytes_done=2)
    v.update("/dev/sda", state=tui.PASSED, advice=tui.advice_for("success", "good"))
    v.finish()
    text = out.getvalue()
    assert "écriture passe 1/1" in text and "reste ~3 min" in text and "RÉSULTAT /dev/sda (W3T0ABCD) : EFFACÉ" in text
    assert not english_words(text.replace("overwrite:zero", "")), sorted(english_words(text))


@pytest.fixture(scope="module")
def key():
    return StationKey.generate()


def _certificate(key, result, *, fonts: list | None = None):
    p = build_payload(result, S.audit_for(result), S.config(), key_id=key.key_id)
    env = envelope.sign_envelope(p, envelope.ERASURE_TYPE, key)
    kw = {"font_dirs": fonts} if fonts is not None else {}
    return p, render_certificate_pdf(p, envelope.envelope_digest(env), key.key_id,
                                     proof=Proof.of(env, key.public_pem), **kw)


# The samples' step errors stand for what a tool said (quoted as recorded, in its language);
# 'ardoise verify' is a command. Neither is the agent's prose.
QUOTED = ("ardoise verify", "sanicap does not offer crypto erase", "2 unreadable ranges after retries",
          "canaries gone", "cancelled by the operator")


def _prose(text: str) -> str:
    for q in QUOTED:
        text = text.replace(q, "")
    return text


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize("sample", [S.overwrite_success, S.purge_success, S.interrupted])
def test_french_certificate_pdf_has_no_english_prose_and_passes_the_check(speak, key, sample):
    speak("fr")
    _, pdf = _certificate(key, sample())
    text = _text(pdf)
    assert "Certificat d'effacement" in text and "Numéro de série" in text
    # 'ardoise verify' is a command, not prose.
    assert not english_words(_prose(text)), sorted(english_words(_prose(text)))
    checked = check_pdf(pdf, {key.key_id: key.public_key})
    assert checked.report.valid, checked.report.reasons
    speak("en")
    assert len(english_words(_text(_certificate(key, sample())[1]))) >= 10


def test_french_machine_report_has_no_english_prose(speak, key):
    speak("fr")
    r = S.overwrite_success()
    p = build_payload(r, S.audit_for(r), S.config(), key_id=key.key_id)
    text = _text(render_system_pdf(None, [p]))
    assert "Rapport machine et bilan d'effacement" in text and "1 disque effacé sur 1" in text
    assert not english_words(_prose(text)), sorted(english_words(_prose(text)))


def _edit(pdf: bytes, old: bytes, new: bytes) -> bytes:
    """A forger rewrites the page's text and keeps the attachments (core fonts: Latin-1 bytes)."""
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    found = 0
    for page in w.pages:
        c = page.get_contents()
        data = c.get_data()
        found += data.count(old)
        c.set_data(data.replace(old, new))
        page.replace_contents(c)
    assert found, old
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


@pytest.mark.parametrize("old, new, field", [
    # the verdict in capitals: a failed wipe passed off as a success
    ("ÉCHEC".encode("latin-1"), "RÉUSSI".encode("latin-1"), "outcome"),
    # « Résultat » in words: only the French label rule sees a lower-case outcome
    ("échec".encode("latin-1"), "réussi".encode("latin-1"), "outcome"),
])
def test_an_altered_french_pdf_is_refused_naming_the_field(speak, key, old, new, field):
    speak("fr")
    _, pdf = _certificate(key, S.failed_with_media_errors(), fonts=[])
    assert check_pdf(pdf, {key.key_id: key.public_key}).report.valid
    checked = check_pdf(_edit(pdf, old, new), {key.key_id: key.public_key})
    assert not checked.report.valid
    assert checked.report.codes[0] == TEXT and f"shows {field}" in checked.report.reasons[0], checked.report.reasons


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) is not installed")
def test_pdftotext_reads_the_french_verdict(speak, key, tmp_path):
    speak("fr")
    _, pdf = _certificate(key, S.purge_success())
    f = tmp_path / "c.pdf"
    f.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(f), "-"], capture_output=True, text=True, check=True).stdout
    assert "RÉUSSI - « PURGE »" in text and "heure de Paris" in text


def test_config_errors_are_french_on_screen_and_english_in_records(speak, tmp_path):
    from agent.config import load_config
    from agent.errors import ConfigError

    bad = tmp_path / "ardoise.yaml"
    bad.write_text('langage: fr\nlot: ""\nlanguage: de\n')
    speak("fr")
    with pytest.raises(ConfigError) as err:
        load_config(bad, cmdline="")
    shown = err.value.localized()
    assert shown.startswith(f"configuration {bad} : clé inconnue langage") and "lot doit être un texte imprimable" in shown
    assert "language doit être l'une des valeurs en/fr" in shown, shown
    # What is stored or printed as JSON stays English.
    assert str(err.value).startswith(f"config in {bad}: unknown key langage")
    assert err.value.to_json()["problems"][0] == "unknown key langage"


def test_docs_outcome_shows_the_catalogs_french_for_every_code():
    from pathlib import Path

    from agent import outcome as o

    doc = (Path(__file__).resolve().parents[2] / "docs" / "outcome.md").read_text()
    with i18n.speaking(i18n.Language.get("fr")):
        words = [o.describe_destination(d) for d in o.Destination] + [o.describe_reason(r) for r in o.Reason] \
            + [o.describe_machine(m) for m in o.MachineCode] + [o.describe_result(r) for r in o.Result]
    missing = [w for w in words if w not in doc]
    assert not missing, f"docs/outcome.md does not show: {missing}"


def test_plan_reasons_are_french_on_screen_and_english_in_the_plan(speak):
    from agent.cli.plan import print_plan
    from agent.sanitize.policy import make_plan

    speak("fr")
    protected = S.disk(target=False, reasons=[T_("read-only device")])
    plan = make_plan(protected)
    assert str(plan.not_target) == "not a target: read-only device"
    out = io.StringIO()
    print_plan(plan, out=out)
    assert "pas une cible : périphérique en lecture seule" in out.getvalue()


def test_french_verify_of_an_altered_pdf_says_why_in_french(speak, key, tmp_path, monkeypatch, capsys):
    from agent.cli import main

    speak("fr")
    _, pdf = _certificate(key, S.failed_with_media_errors(), fonts=[])
    altered = tmp_path / "faux.pdf"
    altered.write_bytes(_edit(pdf, "ÉCHEC".encode("latin-1"), "RÉUSSI".encode("latin-1")))
    pem = tmp_path / "poste.pem"
    pem.write_text(key.public_pem)
    for var in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert main(["verify", "--key", str(pem), str(altered)]) == 6
    err = capsys.readouterr().err
    assert f"{altered} : INVALIDE : la page du PDF contredit le certificat joint" in err, err


def _vm_disk_result():
    """What the VM test wipes: a virtio disk (media "virtual"), and an SED note from its plan."""
    from agent.records import Media, Transport

    r = S.overwrite_success("QM00001")
    r.disk.transport, r.disk.media, r.disk.path, r.disk.name = Transport.VIRTIO, Media.VIRTUAL, "/dev/vdb", "vdb"
    r.notes = [T_("virtio disk: the hypervisor exposes no sanitize commands, overwrite only"),
               T_("self-encrypting drive ({kind}), locking state unknown: sanitized as usual", kind="TCG")]
    return r


def test_french_certificate_shows_the_records_codes_in_words(speak, key):
    speak("fr")
    p, pdf = _certificate(key, _vm_disk_result())
    text = " ".join(_text(pdf).split())
    for words in ("Type de support disque virtuel (virtio)", "« Effacement (Clear) » (réécriture)",
                  "Méthode employée réécriture, une passe de zéros", "1 passe : zéros", "Passes et motifs zéros",
                  "1 953 525 168 secteurs visibles sur 1 953 525 168 (maximum natif)",
                  "disque virtio : l'hyperviseur n'offre aucune commande d'effacement, réécriture seulement",
                  "disque auto-chiffrant (TCG), état de verrouillage inconnu : effacé comme d'habitude"):
        assert words in text, words
    for code in ("virtual", "Overwrite", "overwrite:", "visible_sectors", "native_max", "zero ", "TCG), locking"):
        assert code not in text, code
    # The signed record keeps its codes; only the page says them in words.
    assert (p["media"]["media_type"], p["sanitization"]["method"], p["sanitization"]["technique"]) == (
        "virtual", "overwrite:zero", "Overwrite")
    assert check_pdf(pdf, {key.key_id: key.public_key}).report.valid


def test_a_french_page_whose_method_words_were_edited_is_refused(speak, key):
    from test_certify_pdf_proof import edit_page_text

    speak("fr")
    _, pdf = _certificate(key, S.overwrite_success(), fonts=[])
    # The core font draws Latin-1 bytes: « une passe de zéros » becomes « deux passes ... ».
    forged = edit_page_text(pdf, "une passe de zéros".encode("latin-1"), "deux passes de zéros".encode("latin-1"))
    checked = check_pdf(forged, {key.key_id: key.public_key})
    assert not checked.report.valid and " method " in checked.report.reason, checked.report.reason


def test_french_screen_and_log_name_the_method_in_words(speak):
    speak("fr")
    flat = " ".join(_screen(_view(finished=False), 120, 40).split())
    assert "zéros" in flat and "aléatoire" in flat and "zero" not in flat and "random" not in flat
    out = io.StringIO()
    v = tui.RunView()
    tui.LogDisplay(v, stream=out, every=0)
    v.add_disk(tui.DiskRow("/dev/sda", serial="W3T0ABCD", size_bytes=500_107_862_016))
    v.update("/dev/sda", state=tui.WIPING, method="nvme-format-crypto")
    assert "formatage NVMe avec effacement cryptographique" in out.getvalue()
    assert "nvme-format-crypto" not in out.getvalue()
