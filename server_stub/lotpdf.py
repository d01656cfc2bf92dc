"""The donor's PDF for one lot: a summary (drives, outcomes, methods) and one line per
certificate with its id and digest, so each can be checked against the collector."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

from agent import i18n, outcome
from agent.i18n import Language, speaking
from server_stub.queries import LotSummary, certificate_id_of, decision

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _pdf() -> tuple[FPDF, str]:
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    family = "helvetica"
    # DejaVu covers every character a serial or a lot name may carry; the core fonts only Latin-1.
    if (_DEJAVU / "DejaVuSans.ttf").exists() and (_DEJAVU / "DejaVuSans-Bold.ttf").exists():
        pdf.add_font("dejavu", "", str(_DEJAVU / "DejaVuSans.ttf"))
        pdf.add_font("dejavu", "B", str(_DEJAVU / "DejaVuSans-Bold.ttf"))
        family = "dejavu"
    return pdf, family


def _latin1(text: str, family: str) -> str:
    return text if family == "dejavu" else text.encode("latin-1", "replace").decode("latin-1")


def render_lot_pdf(s: LotSummary, lang: Language | None = None) -> bytes:
    """The lot's PDF in ``lang`` (the lot's language, else its reader's; English by default)."""
    lang = lang or Language("en")
    with speaking(lang):  # the outcome table's words follow the PDF's language
        return _render(s, lang)


def _render(s: LotSummary, lang: Language) -> bytes:
    _ = lang.gettext
    pdf, family = _pdf()
    t = lambda x: _latin1("" if x is None else str(x), family)  # noqa: E731
    pdf.add_page()
    pdf.set_font(family, "B", 16)
    pdf.cell(0, 10, t(_("Erasure summary — lot {lot}").format(lot=s.lot)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 10)
    now = lang.when(datetime.now(timezone.utc))
    lines = [
        _("Generated {when} by the Ardoise collector.").format(when=now)
        + (" " + _("Only certificates received before {when}.").format(when=lang.when(s.until)) if s.until else ""),
        _("Drives: {drives}   Certificates: {certificates}   Sanitized: {succeeded}   "
          "Not sanitized (needing attention): {failed}").format(
            drives=s.drives, certificates=len(s.certificates), succeeded=s.succeeded, failed=s.failed),
        _("What to do with the drives: {list}").format(list="; ".join(
            f"{outcome.describe_destination(k)}: {v}" for k, v in sorted(s.destinations.items()))),
        _("Outcomes of the certificates: {list}").format(
            list=", ".join(f"{lang.outcome(k)} {v}" for k, v in sorted(s.outcomes.items()))),
        _("NIST categories achieved: {list}").format(
            list=", ".join(f"{outcome.describe_category(k)} {v}" for k, v in sorted(s.categories.items()))),
        _("Methods: {list}").format(list=", ".join(f"{i18n.current().method(k)} {v}" for k, v in s.methods.most_common())),
        _("Each certificate is a signed DSSE envelope; its digest is the SHA-256 of its payload. "
          "Download it from the collector and check it with `ardoise verify` or the verify page."),
    ]
    for line in lines:
        pdf.multi_cell(0, 5.5, t(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    # The category column fits the French gloss « Effacement (Clear) ».
    widths = (56, 30, 32, 18, 30, 28, 56, 27)
    heads = (_("Certificate id"), _("Serial"), _("Model"), _("Outcome"), _("Category"), _("Method"),
             _("What to do"), _("Digest (SHA-256, start)"))
    pdf.set_font(family, "B", 8)
    for w, h in zip(widths, heads):
        pdf.cell(w, 6, t(h), border=1)
    pdf.ln()
    pdf.set_font(family, "", 7.5)
    for c, revoked in s.certificates:
        row = (certificate_id_of(c), c.serial, c.model, lang.outcome(c.outcome), lang.nist_category(c.category),
               (i18n.current().method(c.method, empty="") if c.method else "")
               + (" (" + _("station revoked") + ")" if revoked else ""),
               outcome.describe_destination(decision(c).destination), c.digest[:16])
        for w, v in zip(widths, row):
            text = t(v)
            while text and pdf.get_string_width(text) > w - 1.5:
                text = text[:-1]
            pdf.cell(w, 5.5, text, border=1)
        pdf.ln()
    return bytes(pdf.output())
