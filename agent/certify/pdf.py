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

from agent.certify.canonical import canonical_bytes

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

    def field(self, label: str, value: Any, *, reason: str | None = None, width: float = 52) -> None:
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
        if value is None:
            self.set_text_color(*GREY)
        self.set_xy(x + width, y)
        self.multi_cell(value_w, 3.5, self.t(shown), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
        self.set_text_color(0, 0, 0)

    def fields(self, obj: dict, names: Iterable[tuple[str, str]]) -> None:
        for key, label in names:
            self.field(label, obj.get(key), reason=obj.get(f"{key}_reason"))

    def para(self, text: str, size: float = 8) -> None:
        self.font(size)
        self.multi_cell(0, 3.5, self.t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")

    def qr(self, data: str, x: float, y: float, size: float) -> None:
        code = segno.make_qr(data, error="m")
        rows = list(code.matrix_iter(scale=1, border=0))
        module = size / len(rows)
        self.set_fill_color(0, 0, 0)
        for r, row in enumerate(rows):
            c = 0
            while c < len(row):
                if row[c]:
                    start = c
                    while c < len(row) and row[c]:
                        c += 1
                    # One rectangle per horizontal run keeps the PDF small.
                    self.rect(x + start * module, y + r * module, (c - start) * module, module, style="F")
                else:
                    c += 1


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
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit} ({n:,} bytes)"
    return f"{n} bytes"


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


def _certificate_pages(doc: _Doc, p: dict, digest: str, key_id: str | None) -> None:
    s, v, m, person = p["sanitization"], p["verification"], p["media"], p["person"]
    doc.add_page()
    # Set after add_page: add_page draws the previous page's footer with the current text.
    doc.footer_text = f"{PROOF_LINE} Payload SHA-256 digest: {digest}"
    top = doc.get_y()
    success = s["outcome"] == "success"

    doc.font(15, bold=True)
    doc.multi_cell(140, 7, doc.t(person.get("organization") or "Organization not set"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(9)
    doc.cell(140, 5, doc.t(f"Lot: {p.get('lot') or 'none'}   Customer: {p.get('customer') or 'none'}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(140, 6, doc.t("Certificate of Sanitization (NIST SP 800-88)"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(*(GREEN if success else RED))
    doc.font(22, bold=True)
    verdict = s["outcome"].upper()
    if success and s.get("category"):
        verdict += f" - {s['category'].upper()}"
    doc.cell(140, 11, doc.t(verdict), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    doc.font(9, bold=True)
    doc.cell(140, 5, doc.t(f"Drive serial: {m.get('serial') or 'unknown (' + m['device'] + ')'}   Model: {m.get('model') or 'unknown'}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    qr_size = 36
    doc.qr(qr_text(p["certificate_id"], digest), doc.w - doc.r_margin - qr_size, top, qr_size)
    doc.set_y(max(doc.get_y(), top + qr_size) + 1)

    doc.heading("Certificate")
    doc.field("Certificate id", p["certificate_id"])
    doc.field("Issued", p["issued_at"])
    doc.field("Payload SHA-256 digest", digest)
    doc.field("Station key id", key_id or p["station"].get("key_id"))
    doc.field("Station", p["station"].get("hostname"), reason=p["station"].get("hostname_reason"))
    doc.field("Agent", f"{p['agent']['name']} {p['agent']['version']} (schema v{p['schema_version']})")

    doc.heading("Person performing sanitization")
    doc.fields(person, [("name", "Name"), ("title", "Title"), ("organization", "Organization"),
                        ("location", "Location"), ("contact", "Contact")])

    doc.heading("Media information")
    doc.fields(m, [("manufacturer", "Manufacturer"), ("model", "Model"), ("serial", "Serial number"),
                   ("property_number", "Property number"), ("media_type", "Media type"), ("transport", "Transport"),
                   ("device", "Device"), ("firmware", "Firmware"), ("wwn", "WWN")])
    doc.field("Capacity", _bytes(m["size_bytes"]))
    src = m["source"]
    doc.fields(src, [("vendor", "Source machine vendor"), ("model", "Source machine model"),
                     ("serial", "Source machine serial"), ("asset_tag", "Source machine asset tag")])
    doc.fields(m, [("classification", "Classification"), ("data_backed_up", "Data backed up"),
                   ("backup_location", "Backup location"), ("usb_bridge", "USB bridge")])
    if m.get("raid_volume"):
        volume = m["raid_volume"]
        doc.field("RAID volume", f"{volume['note']} ({volume['controller']})")

    doc.heading("Sanitization")
    doc.fields(s, [("category", "Method type (category)"), ("technique", "Technique"), ("method", "Method used"),
                   ("method_details", "Method details")])
    tool = s["tool"]
    doc.field("Tool used", f"{tool['name']} {tool['version']}" + (f" (with {', '.join(tool['external'])})" if tool["external"] else ""))
    doc.field("Outcome", s["outcome"])
    doc.fields(s, [("started_at", "Started"), ("finished_at", "Finished")])
    doc.field("Duration", _duration(s["duration_ms"]))
    doc.field("Bytes written", _bytes(s["bytes_written"]))
    doc.field("Throughput", f"{s['throughput_bps'] / 1e6:.1f} MB/s")
    doc.field("Passes and patterns", ", ".join(f"{x['pattern']} ({_bytes(x['bytes_written'])})" for x in s["passes"]) or "none")
    doc.field("Error LBA ranges", _ranges(s["error_ranges"]))
    doc.field("Resumed after interruption", s["resumed"])
    h = s.get("hidden_areas")
    if h is None:
        doc.field("Hidden areas (HPA/DCO)", None, reason=s.get("hidden_areas_reason"))
    else:
        doc.field("Hidden areas before", _show(h["before"]))
        doc.field("Hidden areas after", _show(h["after"]))
        doc.field("HPA/DCO removed", h.get("removed"))
    for i, st in enumerate(s["steps"], 1):
        line = f"{st['status']}" + (f", category {st['category']}" if st["category"] else "")
        if st.get("error"):
            line += f"; error: {st['error']}"
        cmds = st["commands"]
        for c in cmds[:6]:
            line += f"\n$ {' '.join(c['argv'])} -> exit {_show(c['exit_code'])}"
        if len(cmds) > 6:
            line += f"\n... {len(cmds) - 6} more commands in the JSON"
        doc.field(f"Step {i}: {st['method']}", line)

    doc.heading("Verification")
    doc.field("Verification method", v["method"])
    doc.field("Verification result", v["result"])
    doc.field("Read back", f"{_bytes(v['bytes_read'])}, {v['samples']} sampled ranges")
    cov = v.get("coverage_ppm")
    doc.field("Coverage", None if cov is None else f"{cov / 10000:.2f} %", reason=v.get("coverage_ppm_reason"))
    doc.field("Seed", v.get("seed"), reason=v.get("seed_reason"))
    doc.field("Mismatches", _ranges(v["mismatches"]))
    doc.field("Read errors", _ranges(v["read_errors"]))
    if v["notes"]:
        doc.field("Verification notes", "; ".join(v["notes"]))
    doc.field("Post-sanitization classification", p.get("post_sanitization_classification"),
              reason=p.get("post_sanitization_classification_reason"))
    doc.field("Notes", "; ".join(p["notes"]) or "none")

    doc.heading("Drive health (SMART)")
    health = p["health"]
    doc.field("Health verdict", health.get("verdict"), reason=health.get("verdict_reason"))
    smart = health.get("smart")
    if smart is None:
        doc.field("SMART summary", None, reason=health.get("smart_reason"))
    else:
        shown = [(k, smart[k]) for k in SMART_FIELDS if smart.get(k) not in (None, [], "")]
        for k, val in shown:
            doc.field(k.replace("_", " "), _show(val)[:200])
        if not shown:
            doc.field("SMART summary", "no values recorded")

    doc.heading("Destination")
    d = p["destination"]
    doc.field("Recommended destination", d["type"])
    doc.field("Details", d["details"])
    doc.field("Basis", "; ".join(d["basis"]))

    doc.heading("Attestation")
    a = p["attestation"]
    doc.para(a["statement"])
    doc.fields(a, [("name", "Name"), ("title", "Title"), ("date", "Date")])
    doc.field("Signature", f"Digitally signed by station key {key_id or p['station'].get('key_id')}")
    doc.field("Technician signature", "______________________________")
    doc.heading("Validation")
    val = p["validation"]
    doc.fields(val, [("name", "Name"), ("title", "Title"), ("organization", "Organization")])
    doc.field("Signature and date", "______________________________")
    doc.ln(2)
    doc.font(8, bold=True)
    doc.multi_cell(0, 4, doc.t(PROOF_LINE), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(8)
    doc.multi_cell(0, 4, doc.t(f"Payload SHA-256 digest: {digest}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_certificate_pdf(payload: dict, digest: str, key_id: str | None, *, font_dirs: Iterable[Path] = FONT_DIRS) -> bytes:
    """One drive's certificate as PDF bytes."""
    doc = _Doc(font_dirs=font_dirs)
    doc.set_title(f"Certificate of sanitization {payload['certificate_id']}")
    _certificate_pages(doc, payload, digest, key_id)
    return bytes(doc.output())


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.endswith("_reason") or k in ("raw", "raw_output", "flags"):  # CPU flags: hundreds of words nobody reads
                continue
            out += _flatten(v, f"{prefix}{k}." if isinstance(v, (dict, list)) and v else f"{prefix}{k}")
    elif isinstance(obj, list):
        if obj and all(isinstance(x, dict) for x in obj):
            for i, x in enumerate(obj):
                out += _flatten(x, f"{prefix.rstrip('.')}[{i}].")
        else:
            out.append((prefix.rstrip("."), _show(obj)))
    else:
        out.append((prefix.rstrip("."), _show(obj)))
    return out


def render_system_pdf(audit_payload: dict | None, certificate_payloads: list[dict], *, font_dirs: Iterable[Path] = FONT_DIRS) -> bytes:
    """One machine: its hardware report, a table of its drives, then each drive's certificate."""
    doc = _Doc(font_dirs=font_dirs)
    doc.footer_text = PROOF_LINE
    doc.add_page()
    doc.set_title("Ardoise machine report")
    audit = audit_payload or {}
    org = next((c["person"].get("organization") for c in certificate_payloads if c["person"].get("organization")), None)
    doc.font(15, bold=True)
    doc.cell(0, 7, doc.t(org or "Organization not set"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.font(11, bold=True)
    doc.cell(0, 6, doc.t("Machine report and sanitization summary"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    all_ok = bool(certificate_payloads) and all(c["sanitization"]["outcome"] == "success" for c in certificate_payloads)
    doc.set_text_color(*(GREEN if all_ok else RED))
    doc.font(18, bold=True)
    n_ok = sum(c["sanitization"]["outcome"] == "success" for c in certificate_payloads)
    doc.cell(0, 10, doc.t(f"{n_ok} of {len(certificate_payloads)} drives sanitized"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(0, 0, 0)
    lot = audit.get("lot") or next((c.get("lot") for c in certificate_payloads if c.get("lot")), None)
    doc.field("Lot", lot)
    if audit:
        doc.field("Audit report id", audit.get("report_id"))
        doc.field("Audit issued", audit.get("issued_at"))
        doc.field("Audit payload SHA-256", payload_digest(audit))
        doc.field("Machine verdict", audit.get("verdict"))
        if audit.get("verdict_reasons"):
            doc.field("Verdict reasons", "; ".join(audit["verdict_reasons"]))

    doc.heading("Drives")
    for c in certificate_payloads:
        s, m = c["sanitization"], c["media"]
        doc.field(
            f"{m.get('serial') or m.get('device')}",
            f"{m.get('manufacturer') or ''} {m.get('model') or ''} - {s['method']} - "
            f"{s['category'] or 'no category'} - {s['outcome']} - verification {c['verification']['result']} - "
            f"health {c['health'].get('verdict') or 'unknown'} - certificate {c['certificate_id']}",
        )
    if not certificate_payloads:
        doc.para("No drive certificates.")

    doc.heading("Hardware report")
    machine = audit.get("machine")
    if not machine:
        doc.para("No machine audit." if not audit else "The audit recorded no machine facts.")
    else:
        for label, value in _flatten(machine)[:400]:
            doc.field(label, value)
    for d in audit.get("disks", []):
        doc.field(f"Disk {d.get('device') or ''}", f"{d.get('model') or ''} serial {d.get('serial') or 'unknown'}, verdict {d.get('verdict') or 'unknown'}")

    for c in certificate_payloads:
        _certificate_pages(doc, c, payload_digest(c), c["station"].get("key_id"))
    return bytes(doc.output())
