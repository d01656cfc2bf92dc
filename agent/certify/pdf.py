"""PDF renderings of certificates (one drive per page) and of a machine's report.

The PDF is for people; the signed JSON envelope is the proof, and every page says so and
prints the payload digest. Text is real text (``pdftotext`` extracts it). The QR code is
drawn as vector squares, so no image library is involved and it stays sharp when printed.

DejaVu Sans is used when installed (full Unicode: names like "Łukasz" or "Müller"); on a
system without it the PDF core font is used and text is reduced to Latin-1.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterable

import segno
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace

from agent import humanize, i18n, outcome
from agent.certify.canonical import canonical_bytes
from agent.i18n import N_, NC_, _, pgettext
from agent.certify.pdf_check import VERDICT_WORDS
from agent.certify.pdf_embed import Proof, attach, fingerprint_value

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
GREEN = (0, 128, 60)
RED = (190, 20, 20)
GREY = (90, 90, 90)
# The SMART values a reader of a certificate cares about, in this order; the rest is in the JSON.
SMART_FIELDS = ("protocol", "smart_passed", "power_on_hours", "power_cycles", "temperature_c", "reallocated_sectors",
                "pending_sectors", "offline_uncorrectable", "reported_uncorrect", "failing_attributes",
                "nvme_percentage_used", "nvme_media_errors", "nvme_available_spare", "nvme_critical_warning",
                "scsi_grown_defects", "scsi_uncorrected_errors")
SMART_LABELS = {
    "protocol": N_("protocol"), "smart_passed": N_("SMART self-assessment passed"), "power_on_hours": N_("power-on hours"),
    "power_cycles": N_("power cycles"), "temperature_c": N_("temperature (°C)"),
    "reallocated_sectors": N_("reallocated sectors"), "pending_sectors": N_("pending sectors"),
    "offline_uncorrectable": N_("offline uncorrectable sectors"), "reported_uncorrect": N_("reported uncorrectable errors"),
    "failing_attributes": N_("failing attributes"), "nvme_percentage_used": N_("NVMe percentage used"),
    "nvme_media_errors": N_("NVMe media errors"), "nvme_available_spare": N_("NVMe available spare"),
    "nvme_critical_warning": N_("NVMe critical warning"), "scsi_grown_defects": N_("SCSI grown defects"),
    "scsi_uncorrected_errors": N_("SCSI uncorrected errors"),
}
# Codes of the signed record shown in words (extracted with their context).
_CODE_WORDS = (
    NC_("NIST destination type", "reuse"), NC_("NIST destination type", "recycle"),
    NC_("NIST destination type", "other"),
    NC_("step status", "success"), NC_("step status", "failed"), NC_("step status", "interrupted"),
    NC_("step status", "skipped"), NC_("step status", "refused"), NC_("step status", "unsupported"),
    NC_("certificate verdict", "SUCCESS"), NC_("certificate verdict", "FAILED"),
    NC_("certificate verdict", "INTERRUPTED"),
    NC_("SMART verdict", "good"), NC_("SMART verdict", "warning"), NC_("SMART verdict", "worn"),
    NC_("SMART verdict", "failing"), NC_("SMART verdict", "unknown"), NC_("SMART verdict", "bad"),
)
PROOF_LINE = N_("This PDF is a rendering. The signed JSON certificate (DSSE envelope) is the proof: verify it with "
                "'ardoise verify'.")
# The verdict in capitals at the top of a certificate: pdf_check reads these words back (in
# every language with a catalog) and refuses a page whose verdict is not the signed outcome.


def verdict_word(outcome_code: str, lang: "i18n.Language | None" = None) -> str:
    word = VERDICT_WORDS.get(outcome_code)
    if word is None:
        return outcome_code.upper()
    return (lang or i18n.current()).pgettext("certificate verdict", word)


def when(value: str | None) -> str | None:
    """An instant as signed (ISO 8601, UTC: what ``ardoise verify`` and pdf_check compare),
    followed in another language than English by the reader's wording of it."""
    if not value:
        return value
    lang = i18n.current()
    if lang.code == i18n.SOURCE_LANGUAGE:
        return value
    return _("{iso}, i.e. {local}").format(iso=value, local=lang.when(value))


def qr_text(certificate_id: str, digest: str) -> str:
    """What the QR code says: enough to find the certificate and check it is the same one."""
    return f"ardoise-certificate:{certificate_id};sha256={digest}"


def draw_qr(pdf: FPDF, data: str, x: float, y: float, size: float, *, border: int = 0) -> None:
    """A QR code of ``data`` as filled rectangles, ``size`` mm square at (x, y): vector, so
    it prints sharp on a certificate and on a thermal label alike."""
    rows = list(segno.make_qr(data, error="m").matrix_iter(scale=1, border=border))
    module = size / len(rows)
    pdf.set_fill_color(0, 0, 0)
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                # One rectangle per horizontal run keeps the PDF small.
                pdf.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")
            else:
                c += 1


class _Doc(FPDF):
    """An A4 document with a Unicode font when one is installed."""

    def __init__(self, footer_text: str = "", font_dirs: Iterable[Path] = FONT_DIRS) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.footer_text = footer_text
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(14, 12, 14)
        self.unicode = False
        for d in font_dirs:
            regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
            if regular.is_file() and bold.is_file():
                self.add_font("DejaVu", "", str(regular))
                self.add_font("DejaVu", "B", str(bold))
                self.unicode = True
                break
        self.family = "DejaVu" if self.unicode else "helvetica"
        self.set_creator("ardoise")

    def t(self, text: Any) -> str:
        """Text the current font can draw."""
        s = "" if text is None else str(text)
        if not self.unicode:
            s = s.replace("\u2014", "-").replace("\u2026", "...").encode("latin-1", "replace").decode("latin-1")
        return s

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def footer(self) -> None:
        if not self.footer_text:
            return
        self.set_y(-14)
        self.font(6.5)
        self.set_text_color(*GREY)
        self.multi_cell(0, 3, self.t(self.footer_text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_text_color(0, 0, 0)

    # ---------------------------------------------------------------- building blocks

    def heading(self, text: str) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(1)
        self.font(9, bold=True)
        self.set_fill_color(232, 236, 240)
        self.cell(0, 4.6, self.t(text), fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(0.4)

    def field(self, label: str, value: Any, *, reason: str | None = None, width: float = 52, grey: bool = False) -> None:
        shown = _show(value)
        if value is None and reason:
            shown = f"\u2014 {reason}"
        x = self.l_margin
        value_w = self.w - self.r_margin - x - width
        # Keep a label and its value on the same page: measure both before drawing either.
        self.font(7.5, bold=True)
        label_lines = len(self.multi_cell(width, 3.5, self.t(label), dry_run=True, output=MethodReturnValue.LINES))
        self.font(8)
        value_lines = len(self.multi_cell(value_w, 3.5, self.t(shown), dry_run=True, output=MethodReturnValue.LINES))
        if self.get_y() + 3.5 * max(label_lines, value_lines) > self.page_break_trigger:
            self.add_page()
        self.font(7.5, bold=True)
        y = self.get_y()
        self.set_xy(x, y)
        self.multi_cell(width, 3.5, self.t(label), new_x=XPos.RIGHT, new_y=YPos.TOP, align="L")
        self.font(8)
        if value is None or grey:
            self.set_text_color(*GREY)
        self.set_xy(x + width, y)
        self.multi_cell(value_w, 3.5, self.t(shown), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        # A label longer than its value (French labels are) must not run into the next row.
        self.set_y(max(self.get_y(), y + 3.5 * label_lines))
        self.set_text_color(0, 0, 0)

    def section(self, title: str | None, rows: Iterable[tuple[str, Any]], *, missing_note: str | None = None) -> None:
        """A heading and its known values; the unknown ones are named together on one line
        (why each is unknown is in the annex), not one "unknown" per line."""
        if title:
            self.heading(title)
        missing = []
        for label, value in rows:
            if value is None or value == "":
                missing.append(label)
            else:
                self.field(label, _show(value))
        if missing_note:
            self.field(_("Not recorded"), missing_note, grey=True)
        elif missing:
            self.field(_("Not recorded"), ", ".join(missing), grey=True)

    def callout(self, text: str, color: tuple[int, int, int]) -> None:
        """A sentence in a coloured frame, right under the result."""
        self.ln(1)
        self.font(10, bold=True)
        self.set_text_color(*color)
        self.set_draw_color(*color)
        self.multi_cell(0, 5.5, self.t(text), border=1, padding=1.5, new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)
        self.ln(1)

    def fields(self, obj: dict, names: Iterable[tuple[str, str]]) -> None:
        for key, label in names:
            self.field(label, obj.get(key), reason=obj.get(f"{key}_reason"))

    def para(self, text: str, size: float = 8) -> None:
        self.font(size)
        self.multi_cell(0, 3.5, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")

    def qr(self, data: str, x: float, y: float, size: float) -> None:
        draw_qr(self, data, x, y, size)


def _show(value: Any) -> str:
    if value is None:
        return _("unknown")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else _("none")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if not k.endswith("_reason"))
    return str(value)


def _smart_value(value: Any) -> str:
    """A counter as the reader writes numbers (« 12 000 » heures); anything else as ``_show``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return i18n.current().decimal(value, 0)
    return _show(value)


def _bytes(n: int) -> str:
    lang = i18n.current()
    if n < 1000:
        return i18n.ngettext("{n} byte", "{n} bytes", n).format(n=n)
    return _("{size} ({n} bytes)").format(size=humanize.size(n), n=lang.decimal(n, 0))


def _duration(ms: int) -> str:
    s = ms // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return _("{hours} h {minutes} min {seconds} s").format(hours=h, minutes=f"{m:02d}", seconds=f"{sec:02d}")
    if m:
        return _("{minutes} min {seconds} s").format(minutes=m, seconds=f"{sec:02d}")
    return _("{seconds} s").format(seconds=i18n.current().decimal(ms / 1000))


def _ranges(ranges: list[dict], limit: int = 12) -> str:
    if not ranges:
        return _("none")
    shown = ", ".join(f"{r['start']}-{r['end']}" for r in ranges[:limit])
    if len(ranges) > limit:
        shown += " " + _("... and {n} more (see the JSON)").format(n=len(ranges) - limit)
    return shown


_REASON_TEMPLATES = (
    (re.compile(r"operator\.(\w+) is not set in the config"),
     lambda m: _("operator.{field} is not set in the config").format(field=m[1])),
    (re.compile(r"the audit could not read DMI: (.*)"), lambda m: _("the audit could not read DMI: {why}").format(why=m[1])),
    (re.compile(r"no sanitization category was achieved \(outcome (\w+)\)"),
     lambda m: _("no sanitization category was achieved (outcome {outcome})").format(
         outcome=i18n.current().outcome(m[1]))),
    (re.compile(r"no NIST technique is known for method (\S+)"),
     lambda m: _("no NIST technique is known for method {method}").format(method=m[1])),
    (re.compile(r"device gone: (.*)"), lambda m: _("device gone: {error}").format(error=m[1])),
    # The overwrite engine's step errors (agent/sanitize/overwrite.py), and the system's own
    # words for the usual write failures.
    (re.compile(r"(\d+) range\(s\) of blocks could not be written"),
     lambda m: _("{n} range(s) of blocks could not be written").format(n=m[1])),
    (re.compile(r"verification failed: (\d+) mismatching and (\d+) unreadable range\(s\)"),
     lambda m: _("verification failed: {mismatching} mismatching and {unreadable} unreadable range(s)").format(
         mismatching=m[1], unreadable=m[2])),
    (re.compile(r"(.*): device failing: (.*)"), lambda m: _("{device}: device failing: {error}").format(device=m[1],
                                                                                                     error=m[2])),
    (re.compile(r"(.*): flush failed: (.*)"), lambda m: _("{device}: flush failed: {error}").format(device=m[1],
                                                                                                 error=m[2])),
    # The destination's basis: codes of the record (agent/certify/payload.py recommend()).
    (re.compile(r"outcome (\w+)"), lambda m: _("outcome {outcome}").format(outcome=i18n.current().outcome(m[1]))),
    (re.compile(r"smart_verdict (\w+)"), lambda m: _("SMART verdict {verdict}").format(
        verdict=pgettext("SMART verdict", m[1]) if m[1] != "none" else _("none"))),
    (re.compile(r"media_errors"), lambda m: _("media errors")),
    (re.compile(r"([Nn])o space left on device"), lambda m: _("no space left on device")),
    (re.compile(r"([Ii])nput/output error"), lambda m: _("input/output error")),
    (re.compile(r"([Nn])o such device( or address)?"), lambda m: _("no such device")),
)
_ERROR_WORDS = (N_("cancelled"), N_("verification did not finish"))


def reason_text(text: str | None) -> str:
    """A sentence of the signed record (a ``*_reason``, a note), kept in English there, in
    the reader's language: the catalog's translation of it, or of the template it was made from."""
    if not text:
        return ""
    for pattern, say in _REASON_TEMPLATES:
        m = pattern.fullmatch(text)
        if m:
            return say(m)
    translated = _(text)
    if translated == text:
        translated = i18n.from_template(text, i18n.current()) or text
    return translated


def payload_digest(payload: dict) -> str:
    """Digest of a payload this agent signed (its canonical bytes are the signed bytes)."""
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


# --------------------------------------------------------------------------- what a reader needs first


def _plain_error(error: str, device: str | None) -> str:
    """"/dev/loop3: No space left on device" -> "no space left on device": the device is
    named elsewhere on the page, and the reason reads as the end of a sentence."""
    if device and error.startswith(f"{device}: "):
        error = error[len(device) + 2:]
    if len(error) > 1 and error[0].isupper() and error[1].islower():
        error = error[0].lower() + error[1:]
    return error


def failure_reason(p: dict) -> str | None:
    """Why a drive was not sanitized, in one sentence built from the signed record: where
    the write stopped, and the error the step recorded. None for a success."""
    s, m = p["sanitization"], p["media"]
    if s["outcome"] == "success":
        return None
    step = next((st for st in reversed(s["steps"]) if st.get("error") and st["status"] != "unsupported"), None)
    step = step or next((st for st in reversed(s["steps"]) if st["status"] in ("failed", "interrupted")), None)
    error = reason_text(_plain_error(step["error"], m.get("device"))) if step and step.get("error") else None
    if error is None:
        error = "; ".join(reason_text(n) for n in (s.get("notes") or p.get("notes") or [])) or None
    passes = (step or {}).get("passes") or []
    size = m.get("size_bytes") or 0
    where = None
    if passes and size and passes[-1]["bytes_written"] < size:
        last = passes[-1]
        if len(passes) > 1:
            where = _("pass {n} stopped at {done} of {total}").format(
                n=len(passes), done=humanize.size(last["bytes_written"]), total=humanize.size(size))
        else:
            where = _("stopped at {done} of {total}").format(done=humanize.size(last["bytes_written"]),
                                                             total=humanize.size(size))
    ranges = s.get("error_ranges") or []
    if ranges:
        error = _("{error} (unreadable sectors: LBA {ranges})").format(error=error or _("media errors"),
                                                                        ranges=_ranges(ranges, 4))
    v = p.get("verification") or {}
    if error is None and v.get("result") == "failed":
        error = _("verification failed")
    if where and error:
        return _("{where}: {error}").format(where=where, error=error)
    return where or error or _("outcome {outcome}").format(outcome=i18n.current().outcome(s["outcome"]))


# --------------------------------------------------------------------------- the certificate


def _media_type(m: dict) -> str | None:
    lang = i18n.current()
    if not m.get("media_type"):
        return None
    if not m.get("transport"):
        return lang.media(m["media_type"])
    return "{media} ({transport})".format(media=lang.media(m["media_type"]), transport=lang.transport(m["transport"]))


def _hidden_sectors(h: dict | None) -> str | None:
    """The HPA/DCO record's sector counts as a sentence, not as its field names."""
    if not h or h.get("visible_sectors") is None:
        return None
    lang = i18n.current()
    if h.get("native_max_sectors") is None:
        return _("{visible} sectors visible").format(visible=lang.decimal(h["visible_sectors"], 0))
    return _("{visible} sectors visible of {native} (native maximum)").format(
        visible=lang.decimal(h["visible_sectors"], 0), native=lang.decimal(h["native_max_sectors"], 0))


def _category_line(s: dict) -> Any:
    if s.get("category"):
        lang = i18n.current()
        return "{category} ({technique})".format(category=lang.nist_category(s["category"]),
                                                 technique=lang.technique(s["technique"], empty="-"))
    return None


def _method_details(s: dict) -> str | None:
    """The signed ``method_details`` (English), said again in the reader's language from the
    method table and the passes the record holds; English shows it as signed."""
    signed = s.get("method_details")
    if not signed or i18n.current().code == i18n.SOURCE_LANGUAGE:
        return signed
    parts = []
    try:
        from agent.sanitize import methods

        m = methods.get_method(s["method"].split(":", 1)[-1])
        parts.append(_("{description} (source: {source}; status: {status})").format(
            description=i18n.localize(m.description), source=i18n.localize(m.source),
            status=pgettext("method status", m.status)))
    except Exception:  # noqa: BLE001 - a firmware method has no overwrite description
        pass
    passes = s.get("passes") or []
    if passes:
        parts.append(i18n.ngettext("{n} pass: {patterns}", "{n} passes: {patterns}", len(passes)).format(
            n=len(passes), patterns=", ".join(i18n.current().pattern(str(x["pattern"])) for x in passes)))
    return "; ".join(parts) or signed


def _started_finished(s: dict) -> str:
    """English keeps the signed instants; another language says when it started, in its
    words and time zone, and how long it took (the instants are in the annex's JSON)."""
    lang = i18n.current()
    if lang.code == i18n.SOURCE_LANGUAGE:
        return "{start} - {end} ({duration})".format(start=s["started_at"], end=s["finished_at"],
                                                    duration=_duration(s["duration_ms"]))
    return _("{start}, lasted {duration}").format(start=lang.when(s["started_at"]), duration=_duration(s["duration_ms"]))


def _coverage(ppm: int) -> str:
    return _("{percent} %").format(percent=i18n.current().decimal(ppm / 10000, 2))


def _percent(value: float) -> str:
    return _("{percent} %").format(percent=i18n.current().decimal(value, 0))


def _verification_summary(v: dict) -> Any:
    if v.get("method") in (None, "none"):
        return None
    cov = v.get("coverage_ppm")
    result = i18n.current().verification(v.get("method"), v["result"])[1] if v.get("result") else "-"
    if cov is None:
        return _("{result}: {read} read back in {samples} samples").format(
            result=result, read=humanize.size(v["bytes_read"]), samples=v["samples"])
    return _("{result}: {read} read back in {samples} samples, {coverage} of the drive").format(
        result=result, read=humanize.size(v["bytes_read"]), samples=v["samples"], coverage=_coverage(cov))


def _signature_section(doc: "_Doc", p: dict, digest: str, key_id: str | None, proof: Proof | None = None) -> None:
    """What ties this page to the signed JSON. The PDF-proof work (embedded envelope, the
    station key's fingerprint) adds its lines here, so they stay on the first page."""
    doc.section(_("Signature"), [
        (_("Certificate id"), p["certificate_id"]),
        (_("Issued"), when(p["issued_at"])),
        (_("Payload SHA-256 digest"), digest),
        (_("Station key id"), key_id or p["station"].get("key_id")),
    ] + ([(_("Station key fingerprint"), fingerprint_value(proof))] if proof is not None else []) + [
        (_("Station"), p["station"].get("hostname")),
    ])


def _first_page(doc: "_Doc", p: dict, digest: str, key_id: str | None, proof: Proof | None = None,
                qr_data: str | None = None) -> None:
    s, v, m, d, a = p["sanitization"], p["verification"], p["media"], p["destination"], p["attestation"]
    success = s["outcome"] == "success"
    doc.add_page()
    # Set after add_page: add_page draws the previous page's footer with the current text.
    doc.footer_text = _("{proof} Payload SHA-256 digest: {digest}").format(proof=_(PROOF_LINE), digest=digest)
    top = doc.get_y()
    doc.font(15, bold=True)
    doc.multi_cell(140, 7, doc.t(p["person"].get("organization") or _("Organization not set")), new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)
    doc.font(9)
    # "none" agrees with "lot" and "customer" (French: aucun), not with a feminine noun.
    nobody = pgettext("no lot, no customer", "none")
    doc.cell(140, 5, doc.t(_("Lot: {lot}   Customer: {customer}").format(lot=p.get("lot") or nobody,
                                                                          customer=p.get("customer") or nobody)),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(140, 6, doc.t(_("Certificate of Sanitization (NIST SP 800-88)")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(*(GREEN if success else RED))
    verdict = verdict_word(s["outcome"])
    if success and s.get("category"):
        verdict = "{outcome} - {category}".format(outcome=verdict,
                                                  category=i18n.current().nist_category(s["category"]).upper())
    # A glossed category (French) is longer: the verdict shrinks to stay on one line beside the QR code.
    size = 22
    doc.font(size, bold=True)
    while size > 12 and doc.get_string_width(doc.t(verdict)) > 138:
        size -= 1
        doc.font(size, bold=True)
    doc.cell(140, 11, doc.t(verdict), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    doc.font(9, bold=True)
    # Labels of their own: pdf_check finds them (in each language) and holds their values to the record.
    doc.cell(140, 5, doc.t("{serial_label} {serial}   {model_label} {model}".format(
        serial_label=_("Drive serial:"), model_label=_("Model:"),
        serial=m.get("serial") or _("unknown ({device})").format(device=m["device"]), model=m.get("model") or _("unknown"))),
        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    qr_size = 36
    doc.qr(qr_data or qr_text(p["certificate_id"], digest), doc.w - doc.r_margin - qr_size, top, qr_size)
    doc.set_y(max(doc.get_y(), top + qr_size) + 1)

    reason = failure_reason(p)
    if reason:
        # The reason comes first: a reader of a failed certificate asks "why?" before anything.
        doc.callout(_("Not sanitized: {reason}").format(reason=reason), RED)

    src = m["source"]
    machine = " ".join(x for x in (src.get("vendor"), src.get("model")) if x) or None
    if machine and src.get("serial"):
        machine = _("{machine}, serial {serial}").format(machine=machine, serial=src["serial"])
    volume = m.get("raid_volume")
    doc.section(_("Drive"), [
        (_("Manufacturer and model"), " ".join(x for x in (m.get("manufacturer"), m.get("model")) if x) or None),
        (_("Serial number"), m.get("serial")),
        (_("Capacity"), _bytes(m["size_bytes"])),
        (_("Media type"), _media_type(m)),
        (_("Device at the station"), m.get("device")),
        (_("Taken from"), machine),
    ] + ([(_("RAID volume"), "{note} ({controller})".format(note=_(volume["note"]), controller=volume["controller"]))]
         if volume else []))
    tool = s["tool"]
    doc.section(_("Method and category"), [
        (_("Result"), i18n.current().outcome(s["outcome"])),
        (_("NIST category"), _category_line(s)),
        (_("Method used"), i18n.current().method(s["method"])),
        (_("Method details"), _method_details(s)),
        (_("Tool used"), "{name} {version}".format(name=tool["name"], version=tool["version"])
         + (" " + _("(with {tools})").format(tools=", ".join(tool["external"])) if tool["external"] else "")),
        (_("Started, finished"), _started_finished(s) if s.get("started_at") and s.get("finished_at") else
         _("started {start}, did not finish ({duration})").format(start=when(s["started_at"]),
                                                                 duration=_duration(s["duration_ms"]))
         if s.get("started_at") else None),
    ] + ([(_("Data written"), _bytes(s["bytes_written"]))] if s["bytes_written"] else []))
    verified = v.get("method") not in (None, "none")
    doc.section(_("Verification"), [
        (_("Verification"), _verification_summary(v)),
        # An empty list is a finding ("none"), not a missing value, once something was read back.
        (_("Mismatches"), _ranges(v["mismatches"]) if verified else None),
        (_("Read errors"), _ranges(v["read_errors"]) if verified else None),
    ], missing_note=None if verified else _("no verification was run"))
    doc.section(_("Destination"), [
        (_("Recommended destination"), outcome.advice(outcome.decision_of(p))),
        (_("NIST destination type"), pgettext("NIST destination type", d["type"])),
    ])
    _signature_section(doc, p, digest, key_id, proof)
    doc.heading(_("Attestation"))
    doc.para(_(a["statement"]))
    doc.section(None, [(_("Name"), a.get("name")), (_("Title"), a.get("title")), (_("Date"), when(a.get("date")))])
    doc.field(_("Signature"), _("Digitally signed by station key {key}").format(key=key_id or p["station"].get("key_id")))
    doc.ln(5)  # room for a pen
    doc.field(_("Technician signature"), "______________________________")
    doc.font(7.5)
    doc.set_text_color(*GREY)
    doc.multi_cell(0, 3.5, doc.t(_("The full record (person, steps and commands, drive health, validation, why values "
                                   "are missing) follows in the annex.")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)


def _annex(doc: "_Doc", p: dict) -> None:
    """Everything else the signed JSON holds, for whoever wants it all."""
    s, v, m, person = p["sanitization"], p["verification"], p["media"], p["person"]
    doc.add_page()
    doc.font(12, bold=True)
    doc.multi_cell(0, 6, doc.t(_("Annex: full record of certificate {id}").format(id=p["certificate_id"])), align="L",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.section(_("Person performing sanitization"), [
        (_("Name"), person.get("name")), (_("Title"), person.get("title")), (_("Organization"), person.get("organization")),
        (_("Location"), person.get("location")), (_("Contact"), person.get("contact"))])
    doc.section(_("Media information"), [
        (_("Property number"), m.get("property_number")), (_("Firmware"), m.get("firmware")), (_("WWN"), m.get("wwn")),
        (_("Logical sector size"), m.get("logical_sector_size")), (_("USB bridge"), m.get("usb_bridge")),
        (_("Source machine asset tag"), m["source"].get("asset_tag")), (_("Classification"), m.get("classification")),
        (_("Data backed up"), _(m["data_backed_up"]) if isinstance(m.get("data_backed_up"), str) else m.get("data_backed_up")), (_("Backup location"), m.get("backup_location")),
        (_("Post-sanitization classification"), p.get("post_sanitization_classification"))])
    rows: list[tuple[str, Any]] = [
        (_("Throughput"), humanize.rate(s["throughput_bps"]) if s["throughput_bps"] else None),
        (_("Passes and patterns"), ", ".join("{pattern} ({written})".format(
            pattern=i18n.current().pattern(str(x["pattern"])), written=_bytes(x["bytes_written"])) for x in s["passes"])
         or None),
        (_("Unreadable sectors (LBA ranges)"), _ranges(s["error_ranges"]) if s["passes"] else None),
        (_("Resumed after interruption"), s["resumed"]),
    ]
    h = s.get("hidden_areas")
    if h is None:
        rows.append((_("Hidden areas (HPA/DCO)"), None))
    else:
        rows += [(_("Hidden areas before"), _hidden_sectors(h["before"])),
                 (_("Hidden areas after"), _hidden_sectors(h["after"])),
                 (_("HPA/DCO removed"), h.get("removed"))]
    for i, st in enumerate(s["steps"], 1):
        line = pgettext("step status", st["status"])
        if st["category"]:
            line += ", " + _("category {category}").format(category=i18n.current().nist_category(st["category"]))
        if st.get("error"):
            line += "; " + _("error: {error}").format(error=reason_text(st["error"]))
        cmds = st["commands"]
        for c in cmds[:6]:
            line += "\n$ {argv} -> exit {code}".format(argv=" ".join(c["argv"]), code=_show(c["exit_code"]))
        if len(cmds) > 6:
            line += "\n" + _("... {n} more commands in the JSON").format(n=len(cmds) - 6)
        rows.append((_("Step {i}: {method}").format(i=i, method=i18n.current().method(st["method"])), line))
    doc.section(_("Sanitization steps"), rows)
    cov = v.get("coverage_ppm")
    doc.section(_("Verification details"), [
        (_("Verification method"), i18n.current().verification(v["method"], v["result"])[0]),
        (_("Verification result"), i18n.current().verification(v["method"], v["result"])[1]),
        (_("Read back"), _("{read}, {samples} sampled ranges").format(read=_bytes(v["bytes_read"]), samples=v["samples"])),
        (_("Coverage"), None if cov is None else _coverage(cov)),
        (_("Seed"), v.get("seed")),
        (_("Verification notes"), "; ".join(reason_text(n) for n in v["notes"]) or _("none")),
        (_("Notes"), "; ".join(reason_text(n) for n in p["notes"]) or _("none"))])
    health = p["health"]
    smart = health.get("smart") or {}
    doc.section(_("Drive health (SMART)"), [(_("Health verdict"), pgettext("SMART verdict", health["verdict"])
                                             if health.get("verdict") else None)]
                + [(_(SMART_LABELS.get(k, k)), _smart_value(smart[k])[:200]) for k in SMART_FIELDS
                   if smart.get(k) not in (None, [], "")],
                missing_note=None if health.get("smart") is not None else reason_text(health.get("smart_reason")))
    d = p["destination"]
    doc.section(_("Destination basis"), [(_("Basis"), "; ".join(reason_text(b) for b in d["basis"]) or None)])
    val = p["validation"]
    doc.section(_("Validation"), [(_("Name"), val.get("name")), (_("Title"), val.get("title")),
                               (_("Organization"), val.get("organization")),
                               (_("Signature and date"), "______________________________")])
    reasons = _missing_reasons(p)
    if reasons:
        doc.heading(_("Values not recorded, and why"))
        for label, why in reasons:
            doc.field(label, reason_text(why))
    doc.ln(2)
    doc.font(8, bold=True)
    doc.multi_cell(0, 4, doc.t(_(PROOF_LINE)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


_REASON_LABELS = {
    "customer": N_("Customer"), "audit_id": N_("Audit report id"), "sanitization.method_details": N_("Method details"),
    "sanitization.started_at": N_("Start time"), "sanitization.finished_at": N_("End time"),
    "sanitization.technique": N_("NIST technique"), "media.manufacturer": N_("Manufacturer"), "media.model": N_("Model"),
    "media.serial": N_("Serial number"), "media.property_number": N_("Property number"),
    "media.source.vendor": N_("Source machine vendor"), "media.source.model": N_("Source machine model"),
    "media.source.serial": N_("Source machine serial"), "media.source.asset_tag": N_("Source machine asset tag"),
    "media.classification": N_("Classification"), "media.backup_location": N_("Backup location"), "media.wwn": N_("WWN"),
    "media.usb_bridge": N_("USB bridge"), "media.firmware": N_("Firmware"),
    "sanitization.category": N_("NIST category"), "sanitization.hidden_areas": N_("Hidden areas (HPA/DCO)"),
    "verification.seed": N_("Verification seed"), "verification.coverage_ppm": N_("Verification coverage"),
    "post_sanitization_classification": N_("Post-sanitization classification"),
    "validation.name": N_("Validator name"), "validation.title": N_("Validator title"),
    "validation.organization": N_("Validator organization"), "validation.location": N_("Validator location"),
    "validation.contact": N_("Validator contact"), "validation.date": N_("Validation date"),
    "health.verdict": N_("Health verdict"), "health.smart": N_("SMART summary"), "station.hostname": N_("Station name"),
}


def _missing_reasons(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every ``<name>_reason`` of the payload, as (field path, reason)."""
    out: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for k, val in obj.items():
            if k.endswith("_reason") and isinstance(val, str):
                path = f"{prefix}{k[:-len('_reason')]}"
                out.append((_(_REASON_LABELS[path]) if path in _REASON_LABELS else path.replace("_", " "), val))
            elif isinstance(val, dict) and k not in ("smart",):
                out += _missing_reasons(val, f"{prefix}{k}.")
    return out


def _certificate_pages(doc: "_Doc", p: dict, digest: str, key_id: str | None, proof: Proof | None = None,
                       qr_data: str | None = None) -> None:
    _first_page(doc, p, digest, key_id, proof, qr_data)
    _annex(doc, p)


def render_certificate_pdf(payload: dict, digest: str, key_id: str | None, *, proof: Proof | None = None,
                           qr_data: str | None = None, font_dirs: Iterable[Path] = FONT_DIRS) -> bytes:
    """One drive's certificate as PDF bytes; with ``proof``, the signed envelope and the
    station key are attached (see pdf_embed) and ``ardoise verify cert.pdf`` checks it.
    ``qr_data`` replaces the QR code's id and digest (the record's URL at a collector)."""
    doc = _Doc(font_dirs=font_dirs)
    doc.set_title(_("Certificate of sanitization {id}").format(id=payload["certificate_id"]))
    _certificate_pages(doc, payload, digest, key_id, proof, qr_data)
    if proof is not None:
        attach(doc, proof)
    return bytes(doc.output())


# --------------------------------------------------------------------------- the machine report

# Labels for the audit's machine facts; a key not listed reads as its words ("bios_date" ->
# "Bios date"). Units are decided by the key's suffix in ``_hardware_value``.
_HW_LABELS = {
    "system_vendor": N_("Vendor"), "system_product": N_("Product"), "system_version": N_("Version"), "system_serial": N_("Serial number"),
    "system_uuid": N_("UUID"), "system_sku": N_("SKU"), "system_family": N_("Family"), "bios_vendor": N_("BIOS vendor"),
    "bios_version": N_("BIOS version"), "bios_date": N_("BIOS date"), "source": N_("Read from"),
    "brand": N_("Model"), "arch": N_("Architecture"), "cores": N_("Cores"), "threads": N_("Threads"),
    "advertised_hz": N_("Advertised frequency"), "aes": N_("AES instructions (fast encryption)"),
    "total_bytes": N_("Visible to the system"), "installed_bytes": N_("Installed"), "slots_total": N_("Slots"),
    "slots_used": N_("Slots used"), "health_percent": N_("Health (full charge / design)"), "cycle_count": N_("Charge cycles"),
    "design_capacity": N_("Design capacity"), "full_capacity": N_("Full charge capacity"), "speed_mts": N_("Speed (MT/s)"),
    "configured_speed_mts": N_("Configured speed (MT/s)"), "size_bytes": N_("Size"), "mac": N_("MAC address"),
    "diagonal_inches": N_("Diagonal (inches)"), "refresh_hz": N_("Refresh rate"),
}


def _hardware_label(key: str) -> str:
    return _(_HW_LABELS[key]) if key in _HW_LABELS else key.replace("_", " ").capitalize()


def _hardware_value(key: str, value: Any, *, binary: bool = False) -> Any:
    """A fact with its unit: 2596126000 Hz -> 2.6 GHz, 25275990016 bytes -> 23.5 GiB."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    value = _number(value)
    if isinstance(value, (int, float)):
        if key.endswith("_bytes"):
            return humanize.size(value, binary=binary)
        if key.endswith("_hz"):
            return humanize.frequency(value)
        if key.endswith("_percent"):
            return _percent(value)
    return _show(value)


def _number(value: Any) -> Any:
    """Signed machine facts carry non-integral numbers as text ("81.5", see without_floats)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _hardware_rows(obj: dict, *, binary: bool = False, skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    return [(_hardware_label(k), _hardware_value(k, v, binary=binary)) for k, v in obj.items()
            if not k.endswith("_reason") and k not in skip and not isinstance(v, (dict, list))]


def _item_line(obj: dict, *, skip: tuple[str, ...] = (), binary: bool = False) -> str:
    parts = []
    for k, v in obj.items():
        shown = None if k in skip or k.endswith("_reason") or isinstance(v, (dict, list)) else _hardware_value(k, v, binary=binary)
        if shown is not None and k.endswith("_capacity") and obj.get("unit"):
            shown = "{value} {unit}".format(value=shown, unit=obj["unit"])  # mWh or mAh, as the battery reports
        if shown is not None and k != "unit":
            parts.append(_("{label}: {value}").format(label=_hardware_label(k).lower(), value=shown))
    return ", ".join(parts) or _("nothing recorded")


def _summary_rows(audit: dict, machine_verdict: str) -> list[tuple[str, Any]]:
    """What a person asks first about a machine: what it is, its processor, memory and
    battery, and what to do with it."""
    machine = audit.get("machine") or {}
    dmi, cpu, mem = machine.get("dmi") or {}, machine.get("cpu") or {}, machine.get("memory") or {}
    name = " ".join(x for x in (dmi.get("system_vendor"), dmi.get("system_product") or dmi.get("system_version")) if x) or None
    if name and dmi.get("system_serial"):
        name = _("{machine}, serial {serial}").format(machine=name, serial=dmi["system_serial"])
    processor = None
    if cpu.get("brand"):
        detail = ", ".join(x for x in (
            i18n.ngettext("{n} core", "{n} cores", int(cpu["cores"])).format(n=cpu["cores"]) if cpu.get("cores") else None,
            i18n.ngettext("{n} thread", "{n} threads", int(cpu["threads"])).format(n=cpu["threads"])
            if cpu.get("threads") else None,
            humanize.frequency(cpu["advertised_hz"]) if cpu.get("advertised_hz") else None) if x)
        processor = "{brand} ({detail})".format(brand=cpu["brand"], detail=detail) if detail else cpu["brand"]
    ram_bytes = mem.get("installed_bytes") or mem.get("total_bytes")
    batteries = machine.get("batteries")
    if batteries is None:
        battery = None
    elif not batteries:
        battery = _("none")
    else:
        battery = ", ".join(
            _("{name}: {health} of its design capacity").format(
                name=b.get("name") or _("battery"), health=_percent(float(_number(b["health_percent"]))))
            if b.get("health_percent") is not None else
            _("{name}: health unknown").format(name=b.get("name") or _("battery"))
            for b in batteries)
    verdict = machine_verdict
    if verdict and audit.get("verdict_reasons"):
        verdict = "{verdict} ({reasons})".format(verdict=verdict, reasons="; ".join(_(r) for r in audit["verdict_reasons"]))
    return [(_("Machine"), name), (_("Processor"), processor),
            (_("Memory (RAM)"), humanize.size(ram_bytes, binary=True) if ram_bytes else None),
            (_("Battery health"), battery), (_("Machine verdict"), verdict)]


def _drive_rows(audit: dict, certificates: list[dict]) -> list[tuple[str, str, str, str, str]]:
    """One row per drive: the audit's drives with their certificate when there is one, then
    certificates of drives the audit did not list."""
    rows, used = [], set()
    for d in audit.get("disks") or []:
        cert = next((c for i, c in enumerate(certificates) if i not in used and (
            (d.get("serial") and c["media"].get("serial") == d.get("serial"))
            or (not d.get("serial") and c["media"].get("device") == d.get("device")))), None)
        if cert is not None:
            used.add(certificates.index(cert))
        rows.append(_drive_row(d.get("serial"), d.get("device"), d.get("model"), d.get("size_bytes"), cert))
    for i, c in enumerate(certificates):
        if i not in used:
            m = c["media"]
            rows.append(_drive_row(m.get("serial"), m.get("device"), m.get("model"), m.get("size_bytes"), c))
    return rows


NO_CERTIFICATE = N_("no certificate attached")


def _drive_row(serial, device, model, size, cert) -> tuple[str, str, str, str, str]:
    if cert is None:
        # Only what this report holds: the drive may have a certificate the collector did not link.
        result, cid = "-", _(NO_CERTIFICATE)
    else:
        s = cert["sanitization"]
        result = verdict_word(s["outcome"]) + (" - {category}".format(category=i18n.current().nist_category(s["category"]))
                                               if s.get("category") else "")
        result = _("{result}: {advice}").format(result=result, advice=outcome.advice(outcome.decision_of(cert)))
        cid = cert["certificate_id"]
    return (serial or _("no serial ({device})").format(device=device or "?"), model or "-",
            humanize.size(size) if size else "-", result, cid)


def render_system_pdf(audit_payload: dict | None, certificate_payloads: list[dict], *, font_dirs: Iterable[Path] = FONT_DIRS) -> bytes:
    """One machine: a summary for a person, its drives, the hardware details, then each
    drive's certificate."""
    doc = _Doc(font_dirs=font_dirs)
    doc.footer_text = _(PROOF_LINE)
    doc.add_page()
    doc.set_title(_("Ardoise machine report"))
    audit = audit_payload or {}
    org = audit.get("organization") or next(
        (c["person"].get("organization") for c in certificate_payloads if c["person"].get("organization")), None)
    doc.font(15, bold=True)
    doc.cell(0, 7, doc.t(org or _("Organization not set")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(0, 6, doc.t(_("Machine report and sanitization summary")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    drives = _drive_rows(audit, certificate_payloads)
    decisions = [outcome.decision_of(c) for c in certificate_payloads]
    n_ok = sum(d.sanitized for d in decisions)
    all_ok = bool(drives) and n_ok == len(drives)
    doc.set_text_color(*(GREEN if all_ok else RED))
    doc.font(18, bold=True)
    doc.cell(0, 10, doc.t(i18n.ngettext("{ok} of {total} drive sanitized", "{ok} of {total} drives sanitized",
                                        len(drives)).format(ok=n_ok, total=len(drives))),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    unlinked = sum(r[4] == _(NO_CERTIFICATE) for r in drives)
    if unlinked:
        doc.para(_("Drives without a certificate attached to this report: {n}. Look them up at the collector by "
                   "serial number.").format(n=unlinked))
    # The machine verdict turns to "attention" when a drive is not sanitized (outcome table).
    machine_code = outcome.machine_verdict(audit.get("verdict"), [d.result for d in decisions])

    doc.section(_("Summary"), _summary_rows(audit, outcome.describe_machine(machine_code)) if audit else
                [(_("Machine verdict"), outcome.describe_machine(machine_code))])
    doc.heading(_("Drives"))
    if drives:
        doc.font(7.5)  # a whole certificate id on one line
        with doc.table(col_widths=(32, 42, 16, 28, 64), text_align="LEFT", line_height=4,
                       headings_style=FontFace(emphasis="BOLD", fill_color=(245, 245, 245))) as table:
            table.row([doc.t(x) for x in (_("Serial"), _("Model"), _("Size"), _("Result"), _("Certificate id"))])
            for r in drives:
                table.row([doc.t(x) for x in r])
    else:
        doc.para(_("No drive was found or certified."))

    lot = audit.get("lot") or next((c.get("lot") for c in certificate_payloads if c.get("lot")), None)
    doc.section(_("Audit record"), [(_("Lot"), lot)] + ([
        (_("Audit report id"), audit.get("report_id")), (_("Audit issued"), when(audit.get("issued_at"))),
        (_("Audit payload SHA-256"), payload_digest(audit)),
        (_("Station key id"), (audit.get("station") or {}).get("key_id")),
    ] if audit else []))

    machine = audit.get("machine")
    if machine:
        not_read = _("not read")
        doc.section(_("System (DMI)"), _hardware_rows(machine.get("dmi") or {}),
                    missing_note=None if machine.get("dmi") else not_read)
        doc.section(_("Processor"), _hardware_rows(machine.get("cpu") or {}, skip=("flags",)),
                    missing_note=None if machine.get("cpu") else not_read)
        mem = machine.get("memory") or {}
        doc.section(_("Memory"), _hardware_rows(mem, binary=True)
                    + [(_("Module {n}").format(n=i), _item_line(m, binary=True))
                       for i, m in enumerate(mem.get("modules") or [], 1)],
                    missing_note=None if mem else not_read)
        for title, key in ((N_("Batteries"), "batteries"), (N_("Graphics"), "gpus"), (N_("Network interfaces"), "nics"),
                           (N_("Displays"), "displays")):
            items = machine.get(key)
            doc.section(_(title), [(x.get("name") or x.get("connector") or x.get("slot") or "#{n}".format(n=i),
                                    _item_line(x, skip=("name", "connector", "slot")))
                                   for i, x in enumerate(items or [], 1)],
                        missing_note=not_read if items is None else None if items else _("none"))
        missing = machine.get("missing") or {}
        if missing:
            doc.section(_("Not read during the audit"), [(k, v) for k, v in missing.items()])
    if audit.get("disks"):
        doc.heading(_("Drives seen by the audit"))
    for d in audit.get("disks", []):
        doc.field(_("Disk {device}").format(device=d.get("device") or ""),
                  _("{model}, serial {serial}, {size}, health {verdict}").format(
                      model=d.get("model") or _("unknown model"), serial=d.get("serial") or _("unknown"),
                      size=humanize.size(d["size_bytes"]) if d.get("size_bytes") else _("size unknown"),
                      verdict=pgettext("SMART verdict", d["verdict"]) if d.get("verdict") else _("unknown")))

    for c in certificate_payloads:
        _certificate_pages(doc, c, payload_digest(c), c["station"].get("key_id"))
    return bytes(doc.output())
