"""PDF renderings of certificates (one drive per page) and of a machine's report.

The PDF is for people; the signed JSON envelope is the proof, and every page says so and
prints the payload digest. Text is real text (``pdftotext`` extracts it). The QR code is
drawn as vector squares, so no image library is involved and it stays sharp when printed.

DejaVu Sans is used when installed (full Unicode: names like "Łukasz" or "Müller"); on a
system without it the PDF core font is used and text is reduced to Latin-1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable

import segno
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.fonts import FontFace

from agent import outcome
from agent import humanize
from agent.certify.canonical import canonical_bytes
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
PROOF_LINE = "This PDF is a rendering. The signed JSON certificate (DSSE envelope) is the proof: verify it with 'ardoise verify'."


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
            self.field("Not recorded", missing_note, grey=True)
        elif missing:
            self.field("Not recorded", ", ".join(missing), grey=True)

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
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if not k.endswith("_reason"))
    return str(value)


def _bytes(n: int) -> str:
    if n < 1000:
        return "{n} bytes".format(n=n)
    return "{size} ({n} bytes)".format(size=humanize.size(n), n=f"{n:,}")


def _duration(ms: int) -> str:
    s = ms // 1000
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return (f"{h} h {m:02d} min {sec:02d} s" if h else f"{m} min {sec:02d} s" if m else f"{ms / 1000:.1f} s")


def _ranges(ranges: list[dict], limit: int = 12) -> str:
    if not ranges:
        return "none"
    shown = ", ".join(f"{r['start']}-{r['end']}" for r in ranges[:limit])
    return shown + (f" ... and {len(ranges) - limit} more (see the JSON)" if len(ranges) > limit else "")


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
    error = _plain_error(step["error"], m.get("device")) if step and step.get("error") else None
    if error is None:
        error = "; ".join(s.get("notes") or p.get("notes") or []) or None
    passes = (step or {}).get("passes") or []
    size = m.get("size_bytes") or 0
    where = None
    if passes and size and passes[-1]["bytes_written"] < size:
        last = passes[-1]
        if len(passes) > 1:
            where = "pass {n} stopped at {done} of {total}".format(
                n=len(passes), done=humanize.size(last["bytes_written"]), total=humanize.size(size))
        else:
            where = "stopped at {done} of {total}".format(done=humanize.size(last["bytes_written"]), total=humanize.size(size))
    ranges = s.get("error_ranges") or []
    if ranges:
        error = "{error} (unreadable sectors: LBA {ranges})".format(error=error or "media errors", ranges=_ranges(ranges, 4))
    v = p.get("verification") or {}
    if error is None and v.get("result") == "failed":
        error = "verification failed"
    if where and error:
        return "{where}: {error}".format(where=where, error=error)
    return where or error or "outcome {outcome}".format(outcome=s["outcome"])


# --------------------------------------------------------------------------- the certificate


def _category_line(s: dict) -> Any:
    if s.get("category"):
        return "{category} ({technique})".format(category=s["category"].capitalize(), technique=s["technique"] or "-")
    return None


def _verification_summary(v: dict) -> Any:
    if v.get("method") in (None, "none"):
        return None
    cov = v.get("coverage_ppm")
    coverage = "" if cov is None else ", {pct} % of the drive".format(pct=f"{cov / 10000:.2f}")
    return "{result}: {read} read back in {samples} samples{coverage}".format(
        result=v["result"], read=humanize.size(v["bytes_read"]), samples=v["samples"], coverage=coverage)


def _signature_section(doc: "_Doc", p: dict, digest: str, key_id: str | None, proof: Proof | None = None) -> None:
    """What ties this page to the signed JSON. The PDF-proof work (embedded envelope, the
    station key's fingerprint) adds its lines here, so they stay on the first page."""
    doc.section("Signature", [
        ("Certificate id", p["certificate_id"]),
        ("Issued", p["issued_at"]),
        ("Payload SHA-256 digest", digest),
        ("Station key id", key_id or p["station"].get("key_id")),
    ] + ([("Station key fingerprint", fingerprint_value(proof))] if proof is not None else []) + [
        ("Station", p["station"].get("hostname")),
    ])


def _first_page(doc: "_Doc", p: dict, digest: str, key_id: str | None, proof: Proof | None = None,
                qr_data: str | None = None) -> None:
    s, v, m, d, a = p["sanitization"], p["verification"], p["media"], p["destination"], p["attestation"]
    success = s["outcome"] == "success"
    doc.add_page()
    # Set after add_page: add_page draws the previous page's footer with the current text.
    doc.footer_text = "{proof} Payload SHA-256 digest: {digest}".format(proof=PROOF_LINE, digest=digest)
    top = doc.get_y()
    doc.font(15, bold=True)
    doc.multi_cell(140, 7, doc.t(p["person"].get("organization") or "Organization not set"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(9)
    doc.cell(140, 5, doc.t("Lot: {lot}   Customer: {customer}".format(lot=p.get("lot") or "none", customer=p.get("customer") or "none")),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(140, 6, doc.t("Certificate of Sanitization (NIST SP 800-88)"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(*(GREEN if success else RED))
    doc.font(22, bold=True)
    verdict = s["outcome"].upper()
    if success and s.get("category"):
        verdict = "{outcome} - {category}".format(outcome=verdict, category=s["category"].upper())
    doc.cell(140, 11, doc.t(verdict), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    doc.font(9, bold=True)
    doc.cell(140, 5, doc.t("Drive serial: {serial}   Model: {model}".format(
        serial=m.get("serial") or "unknown ({device})".format(device=m["device"]), model=m.get("model") or "unknown")),
        new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    qr_size = 36
    doc.qr(qr_data or qr_text(p["certificate_id"], digest), doc.w - doc.r_margin - qr_size, top, qr_size)
    doc.set_y(max(doc.get_y(), top + qr_size) + 1)

    reason = failure_reason(p)
    if reason:
        # The reason comes first: a reader of a failed certificate asks "why?" before anything.
        doc.callout("Not sanitized: {reason}".format(reason=reason), RED)

    src = m["source"]
    machine = " ".join(x for x in (src.get("vendor"), src.get("model")) if x) or None
    if machine and src.get("serial"):
        machine = "{machine}, serial {serial}".format(machine=machine, serial=src["serial"])
    volume = m.get("raid_volume")
    doc.section("Drive", [
        ("Manufacturer and model", " ".join(x for x in (m.get("manufacturer"), m.get("model")) if x) or None),
        ("Serial number", m.get("serial")),
        ("Capacity", _bytes(m["size_bytes"])),
        ("Media type", "{media} ({transport})".format(media=m["media_type"], transport=m["transport"])
         if m.get("transport") else m.get("media_type")),
        ("Device at the station", m.get("device")),
        ("Taken from", machine),
    ] + ([("RAID volume", "{note} ({controller})".format(note=volume["note"], controller=volume["controller"]))]
         if volume else []))
    tool = s["tool"]
    doc.section("Method and category", [
        ("Result", s["outcome"]),
        ("NIST category", _category_line(s)),
        ("Method used", s["method"]),
        ("Method details", s.get("method_details")),
        ("Tool used", "{name} {version}".format(name=tool["name"], version=tool["version"])
         + (" (with {tools})".format(tools=", ".join(tool["external"])) if tool["external"] else "")),
        ("Started, finished", "{start} - {end} ({duration})".format(
            start=s["started_at"], end=s["finished_at"], duration=_duration(s["duration_ms"]))
         if s.get("started_at") and s.get("finished_at") else
         "started {start}, did not finish ({duration})".format(start=s["started_at"], duration=_duration(s["duration_ms"]))
         if s.get("started_at") else None),
    ] + ([("Data written", _bytes(s["bytes_written"]))] if s["bytes_written"] else []))
    verified = v.get("method") not in (None, "none")
    doc.section("Verification", [
        ("Verification", _verification_summary(v)),
        # An empty list is a finding ("none"), not a missing value, once something was read back.
        ("Mismatches", _ranges(v["mismatches"]) if verified else None),
        ("Read errors", _ranges(v["read_errors"]) if verified else None),
    ], missing_note=None if verified else "no verification was run")
    doc.section("Destination", [
        ("Recommended destination", outcome.advice(outcome.decision_of(p))),
        ("NIST destination type", d["type"]),
    ])
    _signature_section(doc, p, digest, key_id, proof)
    doc.heading("Attestation")
    doc.para(a["statement"])
    doc.section(None, [("Name", a.get("name")), ("Title", a.get("title")), ("Date", a.get("date"))])
    doc.field("Signature", "Digitally signed by station key {key}".format(key=key_id or p["station"].get("key_id")))
    doc.ln(5)  # room for a pen
    doc.field("Technician signature", "______________________________")
    doc.font(7.5)
    doc.set_text_color(*GREY)
    doc.multi_cell(0, 3.5, doc.t("The full record (person, steps and commands, drive health, validation, why values are "
                                 "missing) follows in the annex."), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)


def _annex(doc: "_Doc", p: dict) -> None:
    """Everything else the signed JSON holds, for whoever wants it all."""
    s, v, m, person = p["sanitization"], p["verification"], p["media"], p["person"]
    doc.add_page()
    doc.font(12, bold=True)
    doc.cell(0, 7, doc.t("Annex: full record of certificate {id}".format(id=p["certificate_id"])),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.section("Person performing sanitization", [
        ("Name", person.get("name")), ("Title", person.get("title")), ("Organization", person.get("organization")),
        ("Location", person.get("location")), ("Contact", person.get("contact"))])
    doc.section("Media information", [
        ("Property number", m.get("property_number")), ("Firmware", m.get("firmware")), ("WWN", m.get("wwn")),
        ("Logical sector size", m.get("logical_sector_size")), ("USB bridge", m.get("usb_bridge")),
        ("Source machine asset tag", m["source"].get("asset_tag")), ("Classification", m.get("classification")),
        ("Data backed up", m.get("data_backed_up")), ("Backup location", m.get("backup_location")),
        ("Post-sanitization classification", p.get("post_sanitization_classification"))])
    rows: list[tuple[str, Any]] = [
        ("Throughput", "{rate} MB/s".format(rate=f"{s['throughput_bps'] / 1e6:.1f}") if s["throughput_bps"] else None),
        ("Passes and patterns", ", ".join("{pattern} ({written})".format(pattern=x["pattern"], written=_bytes(x["bytes_written"]))
                                          for x in s["passes"]) or None),
        ("Unreadable sectors (LBA ranges)", _ranges(s["error_ranges"]) if s["passes"] else None),
        ("Resumed after interruption", s["resumed"]),
    ]
    h = s.get("hidden_areas")
    if h is None:
        rows.append(("Hidden areas (HPA/DCO)", None))
    else:
        rows += [("Hidden areas before", _show(h["before"])), ("Hidden areas after", _show(h["after"])),
                 ("HPA/DCO removed", h.get("removed"))]
    for i, st in enumerate(s["steps"], 1):
        line = st["status"] + (", category {category}".format(category=st["category"]) if st["category"] else "")
        if st.get("error"):
            line += "; error: {error}".format(error=st["error"])
        cmds = st["commands"]
        for c in cmds[:6]:
            line += "\n$ {argv} -> exit {code}".format(argv=" ".join(c["argv"]), code=_show(c["exit_code"]))
        if len(cmds) > 6:
            line += "\n... {n} more commands in the JSON".format(n=len(cmds) - 6)
        rows.append(("Step {i}: {method}".format(i=i, method=st["method"]), line))
    doc.section("Sanitization steps", rows)
    cov = v.get("coverage_ppm")
    doc.section("Verification details", [
        ("Verification method", v["method"]), ("Verification result", v["result"]),
        ("Read back", "{read}, {samples} sampled ranges".format(read=_bytes(v["bytes_read"]), samples=v["samples"])),
        ("Coverage", None if cov is None else "{pct} %".format(pct=f"{cov / 10000:.2f}")),
        ("Seed", v.get("seed")),
        ("Verification notes", "; ".join(v["notes"]) or "none"),
        ("Notes", "; ".join(p["notes"]) or "none")])
    health = p["health"]
    smart = health.get("smart") or {}
    doc.section("Drive health (SMART)", [("Health verdict", health.get("verdict"))]
                + [(k.replace("_", " "), _show(smart[k])[:200]) for k in SMART_FIELDS if smart.get(k) not in (None, [], "")],
                missing_note=None if health.get("smart") is not None else health.get("smart_reason"))
    d = p["destination"]
    doc.section("Destination basis", [("Basis", "; ".join(d["basis"]) or None)])
    val = p["validation"]
    doc.section("Validation", [("Name", val.get("name")), ("Title", val.get("title")),
                               ("Organization", val.get("organization")),
                               ("Signature and date", "______________________________")])
    reasons = _missing_reasons(p)
    if reasons:
        doc.heading("Values not recorded, and why")
        for label, why in reasons:
            doc.field(label, why)
    doc.ln(2)
    doc.font(8, bold=True)
    doc.multi_cell(0, 4, doc.t(PROOF_LINE), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


_REASON_LABELS = {
    "customer": "Customer", "media.manufacturer": "Manufacturer", "media.model": "Model",
    "media.serial": "Serial number", "media.property_number": "Property number",
    "media.source.vendor": "Source machine vendor", "media.source.model": "Source machine model",
    "media.source.serial": "Source machine serial", "media.source.asset_tag": "Source machine asset tag",
    "media.classification": "Classification", "media.backup_location": "Backup location", "media.wwn": "WWN",
    "media.usb_bridge": "USB bridge", "media.firmware": "Firmware",
    "sanitization.category": "NIST category", "sanitization.hidden_areas": "Hidden areas (HPA/DCO)",
    "verification.seed": "Verification seed", "verification.coverage_ppm": "Verification coverage",
    "post_sanitization_classification": "Post-sanitization classification",
    "validation.name": "Validator name", "validation.title": "Validator title",
    "validation.organization": "Validator organization", "validation.location": "Validator location",
    "validation.contact": "Validator contact", "validation.date": "Validation date",
    "health.verdict": "Health verdict", "health.smart": "SMART summary", "station.hostname": "Station name",
}


def _missing_reasons(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every ``<name>_reason`` of the payload, as (field path, reason)."""
    out: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for k, val in obj.items():
            if k.endswith("_reason") and isinstance(val, str):
                path = f"{prefix}{k[:-len('_reason')]}"
                out.append((_REASON_LABELS.get(path, path.replace("_", " ")), val))
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
    doc.set_title(f"Certificate of sanitization {payload['certificate_id']}")
    _certificate_pages(doc, payload, digest, key_id, proof, qr_data)
    if proof is not None:
        attach(doc, proof)
    return bytes(doc.output())


# --------------------------------------------------------------------------- the machine report

# Labels for the audit's machine facts; a key not listed reads as its words ("bios_date" ->
# "Bios date"). Units are decided by the key's suffix in ``_hardware_value``.
_HW_LABELS = {
    "system_vendor": "Vendor", "system_product": "Product", "system_version": "Version", "system_serial": "Serial number",
    "system_uuid": "UUID", "system_sku": "SKU", "system_family": "Family", "bios_vendor": "BIOS vendor",
    "bios_version": "BIOS version", "bios_date": "BIOS date", "source": "Read from",
    "brand": "Model", "arch": "Architecture", "cores": "Cores", "threads": "Threads",
    "advertised_hz": "Advertised frequency", "aes": "AES instructions (fast encryption)",
    "total_bytes": "Visible to the system", "installed_bytes": "Installed", "slots_total": "Slots",
    "slots_used": "Slots used", "health_percent": "Health (full charge / design)", "cycle_count": "Charge cycles",
    "design_capacity": "Design capacity", "full_capacity": "Full charge capacity", "speed_mts": "Speed (MT/s)",
    "configured_speed_mts": "Configured speed (MT/s)", "size_bytes": "Size", "mac": "MAC address",
    "diagonal_inches": "Diagonal (inches)", "refresh_hz": "Refresh rate",
}


def _hardware_label(key: str) -> str:
    return _HW_LABELS.get(key) or key.replace("_", " ").capitalize()


def _hardware_value(key: str, value: Any, *, binary: bool = False) -> Any:
    """A fact with its unit: 2596126000 Hz -> 2.6 GHz, 25275990016 bytes -> 23.5 GiB."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    value = _number(value)
    if isinstance(value, (int, float)):
        if key.endswith("_bytes"):
            return humanize.size(value, binary=binary)
        if key.endswith("_hz"):
            return humanize.frequency(value)
        if key.endswith("_percent"):
            return "{value} %".format(value=f"{value:.0f}")
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
            parts.append("{label}: {value}".format(label=_hardware_label(k).lower(), value=shown))
    return ", ".join(parts) or "nothing recorded"


def _summary_rows(audit: dict, machine_verdict: str) -> list[tuple[str, Any]]:
    """What a person asks first about a machine: what it is, its processor, memory and
    battery, and what to do with it."""
    machine = audit.get("machine") or {}
    dmi, cpu, mem = machine.get("dmi") or {}, machine.get("cpu") or {}, machine.get("memory") or {}
    name = " ".join(x for x in (dmi.get("system_vendor"), dmi.get("system_product") or dmi.get("system_version")) if x) or None
    if name and dmi.get("system_serial"):
        name = "{name}, serial {serial}".format(name=name, serial=dmi["system_serial"])
    processor = None
    if cpu.get("brand"):
        detail = ", ".join(x for x in (
            "{n} cores".format(n=cpu["cores"]) if cpu.get("cores") else None,
            "{n} threads".format(n=cpu["threads"]) if cpu.get("threads") else None,
            humanize.frequency(cpu["advertised_hz"]) if cpu.get("advertised_hz") else None) if x)
        processor = "{brand} ({detail})".format(brand=cpu["brand"], detail=detail) if detail else cpu["brand"]
    ram_bytes = mem.get("installed_bytes") or mem.get("total_bytes")
    batteries = machine.get("batteries")
    if batteries is None:
        battery = None
    elif not batteries:
        battery = "none"
    else:
        battery = ", ".join(
            "{name}: {health} % of its design capacity".format(name=b.get("name") or "battery", health=f"{float(_number(b['health_percent'])):.0f}")
            if b.get("health_percent") is not None else "{name}: health unknown".format(name=b.get("name") or "battery")
            for b in batteries)
    verdict = machine_verdict
    if verdict and audit.get("verdict_reasons"):
        verdict = "{verdict} ({reasons})".format(verdict=verdict, reasons="; ".join(audit["verdict_reasons"]))
    return [("Machine", name), ("Processor", processor),
            ("Memory (RAM)", humanize.size(ram_bytes, binary=True) if ram_bytes else None),
            ("Battery health", battery), ("Machine verdict", verdict)]


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


def _drive_row(serial, device, model, size, cert) -> tuple[str, str, str, str, str]:
    if cert is None:
        # Only what this report holds: the drive may have a certificate the collector did not link.
        result, cid = "-", "no certificate attached"
    else:
        s = cert["sanitization"]
        result = s["outcome"].upper() + (" - {category}".format(category=s["category"]) if s.get("category") else "")
        result = "{result}: {advice}".format(result=result, advice=outcome.advice(outcome.decision_of(cert)))
        cid = cert["certificate_id"]
    return (serial or "no serial ({device})".format(device=device or "?"), model or "-",
            humanize.size(size) if size else "-", result, cid)


def render_system_pdf(audit_payload: dict | None, certificate_payloads: list[dict], *, font_dirs: Iterable[Path] = FONT_DIRS) -> bytes:
    """One machine: a summary for a person, its drives, the hardware details, then each
    drive's certificate."""
    doc = _Doc(font_dirs=font_dirs)
    doc.footer_text = PROOF_LINE
    doc.add_page()
    doc.set_title("Ardoise machine report")
    audit = audit_payload or {}
    org = audit.get("organization") or next(
        (c["person"].get("organization") for c in certificate_payloads if c["person"].get("organization")), None)
    doc.font(15, bold=True)
    doc.cell(0, 7, doc.t(org or "Organization not set"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(0, 6, doc.t("Machine report and sanitization summary"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    drives = _drive_rows(audit, certificate_payloads)
    decisions = [outcome.decision_of(c) for c in certificate_payloads]
    n_ok = sum(d.sanitized for d in decisions)
    all_ok = bool(drives) and n_ok == len(drives)
    doc.set_text_color(*(GREEN if all_ok else RED))
    doc.font(18, bold=True)
    doc.cell(0, 10, doc.t("{ok} of {total} drives sanitized".format(ok=n_ok, total=len(drives))),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    unlinked = sum(r[4] == "no certificate attached" for r in drives)
    if unlinked:
        doc.para("Drives without a certificate attached to this report: {n}. Look them up at the collector by "
                 "serial number.".format(n=unlinked))
    # The machine verdict turns to "attention" when a drive is not sanitized (outcome table).
    machine_code = outcome.machine_verdict(audit.get("verdict"), [d.result for d in decisions])

    doc.section("Summary", _summary_rows(audit, outcome.describe_machine(machine_code)) if audit else
                [("Machine verdict", outcome.describe_machine(machine_code))])
    doc.heading("Drives")
    if drives:
        doc.font(7.5)  # a whole certificate id on one line
        with doc.table(col_widths=(32, 42, 16, 28, 64), text_align="LEFT", line_height=4,
                       headings_style=FontFace(emphasis="BOLD", fill_color=(245, 245, 245))) as table:
            table.row([doc.t(x) for x in ("Serial", "Model", "Size", "Result", "Certificate id")])
            for r in drives:
                table.row([doc.t(x) for x in r])
    else:
        doc.para("No drive was found or certified.")

    lot = audit.get("lot") or next((c.get("lot") for c in certificate_payloads if c.get("lot")), None)
    doc.section("Audit record", [("Lot", lot)] + ([
        ("Audit report id", audit.get("report_id")), ("Audit issued", audit.get("issued_at")),
        ("Audit payload SHA-256", payload_digest(audit)), ("Station key id", (audit.get("station") or {}).get("key_id")),
    ] if audit else []))

    machine = audit.get("machine")
    if machine:
        doc.section("System (DMI)", _hardware_rows(machine.get("dmi") or {}), missing_note=None if machine.get("dmi") else "not read")
        doc.section("Processor", _hardware_rows(machine.get("cpu") or {}, skip=("flags",)),
                    missing_note=None if machine.get("cpu") else "not read")
        mem = machine.get("memory") or {}
        doc.section("Memory", _hardware_rows(mem, binary=True)
                    + [("Module {n}".format(n=i), _item_line(m, binary=True)) for i, m in enumerate(mem.get("modules") or [], 1)],
                    missing_note=None if mem else "not read")
        for title, key in (("Batteries", "batteries"), ("Graphics", "gpus"), ("Network interfaces", "nics"),
                           ("Displays", "displays")):
            items = machine.get(key)
            doc.section(title, [(x.get("name") or x.get("connector") or x.get("slot") or "#{n}".format(n=i),
                                 _item_line(x, skip=("name", "connector", "slot")))
                                for i, x in enumerate(items or [], 1)],
                        missing_note="not read" if items is None else None if items else "none")
        missing = machine.get("missing") or {}
        if missing:
            doc.section("Not read during the audit", [(k, v) for k, v in missing.items()])
    if audit.get("disks"):
        doc.heading("Drives seen by the audit")
    for d in audit.get("disks", []):
        doc.field("Disk {device}".format(device=d.get("device") or ""), "{model}, serial {serial}, {size}, health {verdict}".format(
            model=d.get("model") or "unknown model", serial=d.get("serial") or "unknown",
            size=humanize.size(d["size_bytes"]) if d.get("size_bytes") else "size unknown", verdict=d.get("verdict") or "unknown"))

    for c in certificate_payloads:
        _certificate_pages(doc, c, payload_digest(c), c["station"].get("key_id"))
    return bytes(doc.output())
