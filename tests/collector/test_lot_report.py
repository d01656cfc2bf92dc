"""The lot report PDF reads as what a data-protection officer files, in the lot's language:
the text is checked with pdftotext (real text, not pictures of it)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from lot_samples import INVENTORY_CSV, sample_lot

from agent.certify.envelope import envelope_digest
from agent.certify.keys import StationKey
from server_stub.errors import Malformed
from server_stub.lots.inventory import read_inventory
from server_stub.lots.reconcile import reconcile
from server_stub.lots.report import Co2Factor, LotInfo, build_report, may_close, sign_report, state_label, translator
from server_stub.lots.report_pdf import render_report_pdf

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils)")


def _report(language: str, *, reason: str | None = "M6LOST volé pendant le transport (plainte n° 1234).") -> dict:
    lot = sample_lot()
    recon = reconcile(read_inventory(INVENTORY_CSV).devices, lot.certificate_facts(), lot.audit_facts(),
                      lot.destructions)
    key = StationKey.generate()
    return build_report(LotInfo("REG-ARA-2026-12", "Région Auvergne-Rhône-Alpes", "Atelier Réemploi Lyon", language,
                                "2026-11-20"), recon, lot.certificate_facts(), lot.audit_facts(),
                        collector_key_id=key.key_id, closed_at="2026-12-05T15:00:00Z", closed_by="Claire Martin",
                        closure=may_close(recon, is_manager=True, reason=reason),
                        co2=Co2Factor(100, "source citée pour le test")), key


def _text(payload: dict, key: StationKey) -> str:
    digest = envelope_digest(sign_report(payload, key))
    pdf = render_report_pdf(payload, digest)
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(out.decode().split()), digest


def test_the_french_report_reads_as_a_dpo_files_it():
    payload, key = _report("fr")
    text, digest = _text(payload, key)
    for phrase in ("Rapport de lot — REG-ARA-2026-12", "Donateur Région Auvergne-Rhône-Alpes",
                   "Date de réception 20 novembre 2026", "Date de clôture 5 décembre 2026",
                   "Clôturé malgré des équipements non résolus", "plainte n° 1234",
                   "Indicateurs de réemploi (loi REEN, art. 13)", "Taux de réemploi 66,7 %",
                   "Équipements reçus 6", "400 kg CO2e", "source citée pour le test", "NIST SP 800-88",
                   "art. 5.2 du RGPD", "ardoise verify --bundle", "Procès-verbaux de destruction",
                   "M6LOST", "manquant", "aucun disque trouvé", "Émissions évitées (estimation)", "Page 1 sur 1",
                   digest):
        assert phrase in text, phrase
    for english in ("Devices", "erased", "no disk", "undecided", "reuse "):  # no English left in the French report
        assert english not in text, english


def test_the_english_report_is_in_english():
    payload, key = _report("en")
    text, _ = _text(payload, key)
    for phrase in ("Lot report — REG-ARA-2026-12", "Received on November 20, 2026", "Reuse rate 66.7%",
                   "Devices received 6", "GDPR art. 5(2)", "Destruction records", "Page 1 of 1"):
        assert phrase in text, phrase
    assert "Équipements" not in text


def test_the_report_words_come_from_the_projects_catalog():
    # One catalog (agent/locale): the report, the lot page and the labels share its entries;
    # test_i18n_catalogs checks that every string the code marks is translated.
    assert translator("fr")("Reuse rate") == "Taux de réemploi" and translator("en")("Reuse rate") == "Reuse rate"
    assert state_label("no_disk", "fr") == "aucun disque trouvé" and state_label("no_disk", "en") == "no disk found"
    from server_stub.lots import report

    assert not hasattr(report, "FRENCH") and not hasattr(report, "ENGLISH")


def test_an_unknown_language_is_refused():
    with pytest.raises(Malformed, match="lot language 'de'"):
        _report("de")
