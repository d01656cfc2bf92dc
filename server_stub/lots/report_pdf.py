"""The lot report as a PDF, in the lot's language: what a donor's data-protection officer
files. A rendering of the signed payload only (nothing computed here that the JSON does
not say), with the report's digest on every page."""

from __future__ import annotations

from typing import Any

from fpdf.enums import XPos, YPos

from agent.certify.pdf import GREY, _Doc
from agent.i18n import N_
from server_stub.lots.report import (LEVELS, METHOD, category_label, destination_label, percent, state_label, when,
                                     words)


class _PagedDoc(_Doc):
    """Footer with the page number ("{nb}" is filled in by fpdf when the PDF is written)."""

    def __init__(self, template: str) -> None:
        super().__init__(footer_text=template)
        self.template = template

    def footer(self) -> None:
        self.footer_text = self.template.replace("{page}", str(self.page_no()))
        super().footer()


def _table(pdf: _Doc, heads: list[str], widths: list[float], rows: list[list[Any]]) -> None:
    def head() -> None:
        pdf.font(7, bold=True)
        pdf.set_fill_color(232, 236, 240)
        for w, h in zip(widths, heads):
            text = pdf.t(h)
            while text and pdf.get_string_width(text) > w - 1.2:
                text = text[:-1]
            pdf.cell(w, 5, text, border=1, fill=True)
        pdf.ln()

    head()
    pdf.font(7)
    for row in rows:
        if pdf.get_y() + 5 > pdf.page_break_trigger:
            pdf.add_page()
            head()
            pdf.font(7)
        for w, v in zip(widths, row):
            text = pdf.t("" if v is None else v)
            if pdf.get_string_width(text) > w - 1.2:  # a cut value says so, never reads as whole
                while text and pdf.get_string_width(text + "…") > w - 1.2:
                    text = text[:-1]
                text += "…"
            pdf.cell(w, 4.6, text, border=1)
        pdf.ln()


def render_report_pdf(payload: dict, digest: str) -> bytes:
    _ = words(payload)
    lang = payload["lot"]["language"]
    title = _("Lot report")  # not inside an f-string: pybabel would not extract it
    # Short enough for one line: the digest names the report on every page.
    pdf = _PagedDoc(f"{title} {payload['lot']['name']} — SHA-256 {digest} — "
                    + _("Page {page} of {pages}").format(page="{page}", pages="{nb}"))
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.font(15, bold=True)
    pdf.cell(0, 8, pdf.t(f"{title} — {payload['lot']['name']}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(10)
    pdf.set_text_color(*GREY)
    pdf.cell(0, 5, pdf.t(_("Data erasure and fate of the equipment")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    lot = payload["lot"]
    for label, value in ((_("Donor"), lot["donor"]), (_("Reconditioning workshop"), lot["workshop"]),
                         (_("Received on"), when(lot["received_on"], lang)),
                         (_("Closed on"), when(payload["closed_at"], lang)),
                         (_("Closed by"), payload["closed_by"]), (_("Report id"), payload["report_id"]),
                         (_("Report digest (SHA-256)"), digest), (_("Collector key"), payload["collector_key_id"])):
        pdf.field(label, value)
    if payload["forced"]:
        pdf.ln(1)
        pdf.set_text_color(190, 20, 20)
        pdf.font(8, bold=True)
        pdf.multi_cell(0, 3.8, pdf.t(_("Closed although devices are unresolved, for this reason:")),
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.font(8)
        pdf.multi_cell(0, 3.8, pdf.t(payload["closing_reason"]), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)

    c = payload["counts"]
    pdf.heading(_("Summary"))
    for label, key in ((N_("Devices declared by the donor"), "declared"),
                       (N_("Data erased (NIST SP 800-88 Clear or Purge)"), "sanitized"),
                       (N_("No disk found in the device"), "no_disk"), (N_("Storage destroyed"), "destroyed"),
                       (N_("Not erased (open)"), "not_sanitized"), (N_("Missing"), "missing"),
                       (N_("Wiped but not in the inventory"), "extra"), (N_("Certificates"), "certificates"),
                       (N_("Audit reports"), "audit_reports")):
        pdf.field(_(label), c[key], width=90)

    r = payload["reen"]
    pdf.heading(_("Reuse figures (loi REEN, art. 13)"))
    for label, key in ((N_("Devices received"), "received"), (N_("Reused"), "reused"), (N_("Recycled"), "recycled"),
                       (N_("Destroyed"), "destroyed"), (N_("Not decided yet"), "undecided")):
        pdf.field(_(label), r[key], width=90)
    pdf.field(_("Reuse rate"), percent(r["reuse_rate_ppm"], lang), width=90)
    if payload["co2"]:
        co2 = payload["co2"]
        pdf.field(_("Emissions avoided (estimate)"),
                  f"{co2['avoided_kg']} " + _("kg CO2e, at {factor} kg CO2e per reused device (source: {source})")
                  .format(factor=co2["kg_per_reused_device"], source=co2["source"]), width=90)

    pdf.heading(_("How the data was erased"))
    pdf.font(8)
    pdf.multi_cell(0, 3.8, pdf.t(_(METHOD)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.multi_cell(0, 3.8, pdf.t(_(LEVELS)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heads = [_("Line"), _("Serial number"), _("Asset tag"), _("Model"), _("Status"), _("Level"), _("Destination"),
             _("Certificates (SHA-256)")]
    # State and destination words must fit whole ("aucun disque trouvé"); digests are cut to 8.
    widths = [10, 27, 23, 29, 27, 12, 19, 35]

    def rows(devices: list[dict]) -> list[list[Any]]:
        out = []
        for d in devices:
            certs = " ".join(x["certificate"][:8] for x in d["drives"] if x["certificate"])
            out.append([d["line"], d["serial"] or (d["identifier"] if d["line"] is None else ""), d["asset_tag"],
                        d["model"], state_label(d["state"], lang), category_label(d["category"], lang),
                        # A missing device was never received: it has no destination to decide.
                        "—" if d["state"] == "missing" else destination_label(d["destination"], lang),
                        certs])
        return out

    pdf.heading(_("Devices"))
    _table(pdf, heads, widths, rows(payload["devices"]))
    if payload["extras"]:
        pdf.heading(_("Devices wiped but not in the inventory"))
        _table(pdf, heads, widths, rows(payload["extras"]))
    destructions = [(d["destruction"]) for d in payload["devices"] + payload["extras"] if d["destruction"]]
    destructions += [x for d in payload["devices"] + payload["extras"] for x in d["drive_destructions"]]
    if destructions:
        pdf.heading(_("Destruction records"))
        _table(pdf, [_("Identifier"), _("Date"), _("Method"), _("Person"), _("WEEE operator")], [34, 28, 30, 38, 52],
               [[d["identifier"], when(d["date"], lang), d["method"], d["person"], d["weee_partner"]]
                for d in destructions])
    return bytes(pdf.output())
