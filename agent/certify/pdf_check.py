"""Checking a certificate PDF on its own: the envelope attached to it (pdf_embed), then
that what the page shows a person is what the envelope signs.

The page is text drawn by ``agent.certify.pdf``; pypdf extracts it. Three kinds of rule,
each naming the field it protects, so a refusal says which fact was changed:

- presence: language-neutral values (certificate id, digest, serial, model) must be shown;
- exclusivity: a value with a recognisable shape (a UUID, a 64-digit hex digest, an ISO
  time, an upper-case outcome or category word, an ``overwrite:`` method) must be the
  envelope's wherever it appears, so a second, edited copy of it is caught;
- labels: where the label of a field is found at the start of a line, the value after it
  must be the envelope's (as that language shows it: ``success`` is « réussi » after
  « Résultat »). The labels are the renderer's, in English and in every language with a
  catalog, so a French PDF is held to the same rules. A layout without that label skips
  the rule (the two rules above still hold), it never refuses a genuine PDF.

What it cannot see: a fact added as free prose or as an image. The envelope is the proof;
this check only refuses a page that contradicts it.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field

from agent import i18n
from agent.certify import check
from agent.certify import envelope as env
from agent.certify.keys import key_id, load_public_key
from agent.certify.pdf_embed import ENVELOPE_NAME, KEY_NAME
from agent.errors import CertificateError

# Reason codes, beside check.py's: the first word of every refusal line.
NOT_PDF = "not-pdf"
ATTACHMENT = "pdf-attachment"
TEXT = "pdf-text"
INTEGRITY_ONLY = "integrity-only"

PDF_MAGIC = b"%PDF-"
# A certificate runs onto a second or third page when a drive has many steps. Text is only
# extracted from a document of that size: the public verify page must not spend its CPU
# on a thousand-page upload.
MAX_PAGES = 20
MAX_ATTACHMENT = 1 << 20  # an envelope is under the collector's 64 KiB upload limit

_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_ISO_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
_CATEGORY_WORD = re.compile(r"\b(CLEAR|PURGE|DESTROY)\b")
# The verdict in capitals at the top of a certificate (agent.certify.pdf), by outcome code;
# shown with pgettext("certificate verdict", ...) in the PDF's language.
VERDICT_WORDS = {"success": i18n.N_("SUCCESS"), "failed": i18n.N_("FAILED"), "interrupted": i18n.N_("INTERRUPTED")}
_OVERWRITE = re.compile(r"\boverwrite:[A-Za-z0-9:_-]+")


def is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(PDF_MAGIC)


@dataclass
class PdfContents:
    attachments: dict[str, bytes]
    text: str


def read_pdf(data: bytes) -> PdfContents:
    """The embedded files and the page text; ``CertificateError`` (``not-pdf``) if unreadable."""
    # pypdf logs every repair it makes to a damaged file; the refusal line says enough.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - a dependency, listed in pyproject and the image
        raise env.fail(NOT_PDF, "checking a PDF needs pypdf (python3-pypdf)") from None
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if len(reader.pages) > MAX_PAGES:
            raise env.fail(NOT_PDF, f"{len(reader.pages)} pages: a certificate PDF has at most {MAX_PAGES}")
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        files = _embedded_files(reader.trailer["/Root"])
    except CertificateError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise env.fail(NOT_PDF, f"not a readable PDF ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - a parser fed hostile bytes (the public verify page) may raise
        # anything (NotImplementedError for an unknown filter, zlib.error...); it is still "not readable".
        raise env.fail(NOT_PDF, f"not a readable PDF ({type(exc).__name__})") from None
    return PdfContents(files, text)


def _embedded_files(root, wanted: tuple[str, ...] = (ENVELOPE_NAME, KEY_NAME)) -> dict[str, bytes]:
    """The ``wanted`` files of the document's EmbeddedFiles name tree (ISO 32000-1 7.11.4),
    walked by hand: the Debian 12 pypdf (3.4) has no ``attachments`` accessor. Only those
    are decompressed, and each must stay certificate-sized: an upload to the public verify
    page may carry a compression bomb."""
    out: dict[str, bytes] = {}
    names = root.get("/Names")
    tree = names.get_object().get("/EmbeddedFiles") if names is not None else None
    stack = [tree.get_object()] if tree is not None else []
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > 10_000:
            raise env.fail(ATTACHMENT, "the attachment list is too large for a certificate PDF")
        for kid in node.get("/Kids", []):
            stack.append(kid.get_object())
        pairs = node.get("/Names", [])
        for i in range(0, len(pairs) - 1, 2):
            name = str(pairs[i])
            if name not in wanted:
                continue
            spec = pairs[i + 1].get_object()
            ef = spec.get("/EF")
            if ef is None:
                continue
            ef = ef.get_object()
            stream = ef.get("/UF") or ef.get("/F")
            if stream is not None:
                if name in out:  # a viewer may show one, a checker read the other
                    raise env.fail(ATTACHMENT, f"{name} is attached twice")
                data = stream.get_object().get_data()
                if len(data) > MAX_ATTACHMENT:
                    raise env.fail(ATTACHMENT, f"{name} is {len(data)} bytes: not a certificate")
                out[name] = data
    return out


# ------------------------------------------------------------------ the page against the envelope


def _norm(text: str) -> str:
    return " ".join(text.split())


_LABELS: tuple[tuple[str, str, str, str], ...] = (
    # (field named in a refusal, English label at the start of a line (the catalog's msgid),
    #  payload path, how the page shows the value: as signed, or an outcome or method code in words)
    ("serial", "Drive serial:", "media.serial", "as-is"),
    ("serial", "Serial number", "media.serial", "as-is"),
    ("model", "Model", "media.model", "as-is"),
    ("certificate id", "Certificate id", "certificate_id", "as-is"),
    ("digest", "Payload SHA-256 digest", "@digest", "as-is"),
    ("outcome", "Outcome", "sanitization.outcome", "outcome"),
    ("outcome", "Result", "sanitization.outcome", "outcome"),
    ("method", "Method used", "sanitization.method", "method"),
    ("category", "Method type (category)", "sanitization.category", "as-is"),
    ("issued date", "Issued", "issued_at", "as-is"),
    ("start date", "Started", "sanitization.started_at", "as-is"),
    ("finish date", "Finished", "sanitization.finished_at", "as-is"),
)


def _label_rules() -> list[tuple[str, str, str, str, "i18n.Language"]]:
    """Each label as English and every catalog writes it (a French PDF says « N° de série : »)."""
    rules, seen = [], set()
    for code in i18n.available_languages():
        lang = i18n.Language.get(code)
        for name, label, path, kind in _LABELS:
            shown = lang.gettext(label)
            if (shown, path) not in seen:
                seen.add((shown, path))
                rules.append((name, shown, path, kind, lang))
    return rules


def _verdict_words() -> dict[str, str]:
    """Every language's capitalised verdict (SUCCESS, RÉUSSI...) -> its outcome code."""
    words = {}
    for code in i18n.available_languages():
        lang = i18n.Language.get(code)
        for outcome, word in VERDICT_WORDS.items():
            words[lang.pgettext("certificate verdict", word)] = outcome
    return words


def _get(payload: dict, path: str, digest: str):
    if path == "@digest":
        return digest
    obj = payload
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _strings(obj) -> set[str]:
    if isinstance(obj, dict):
        return set().union(*(_strings(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_strings(v) for v in obj)) if obj else set()
    return {obj} if isinstance(obj, str) else set()


def text_problems(text: str, payload: dict, digest: str, signer_key_id: str | None) -> list[str]:
    """Each line says which field of the page contradicts the signed envelope."""
    out: list[str] = []
    flat = _norm(text)
    compact = "".join(text.split())  # a long id wrapped over two lines is still shown
    s, m = payload.get("sanitization", {}), payload.get("media", {})
    known = _strings(payload) | {digest} | ({signer_key_id} if signer_key_id else set())

    def refuse(name: str, shown: str, signed) -> None:
        line = f"{TEXT}: the page shows {name} {shown!r} but the signed certificate says {signed!r}"
        if line not in out:
            out.append(line)

    for name, value in (("certificate id", payload.get("certificate_id")), ("digest", digest),
                        ("serial", m.get("serial")), ("model", m.get("model"))):
        if value and _norm(value) not in flat and "".join(value.split()) not in compact:
            out.append(f"{TEXT}: the page does not show the {name} {value!r} of the signed certificate")

    for name, pattern in (("certificate id", _UUID), ("digest", _HEX64), ("date", _ISO_TIME), ("method", _OVERWRITE)):
        for match in pattern.finditer(text):
            shown = match.group(0)
            # A value too long for its cell is broken over two lines: its first part ends a line.
            wrapped = text[match.end():match.end() + 1] == "\n" and any(k.startswith(shown) for k in known)
            if shown not in known and not wrapped:
                refuse(name, shown, _expected_for(name, payload, digest))
    # A tool's own words in the record ("... FAILED: Input/output error" from a step that
    # a later one made good) are the certificate's too, not a second verdict.
    quoted = set(re.findall(r"\b[^\W\d_a-z]+\b", " ".join(known)))
    verdicts = _verdict_words()
    outcome_word = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(verdicts, key=len, reverse=True)) + r")\b")
    for shown in outcome_word.findall(text):
        if verdicts[shown] != str(s.get("outcome") or "").lower() and shown not in quoted:
            refuse("outcome", shown, s.get("outcome"))
    for shown in _CATEGORY_WORD.findall(text):
        if shown != str(s.get("category") or "").upper() and shown not in quoted:
            refuse("category", shown, s.get("category"))

    for name, label, path, kind, lang in _label_rules():
        expected = _get(payload, path, digest)
        if expected is None:
            continue
        if kind == "outcome":
            expected = lang.outcome(expected)
        elif kind == "method":
            expected = lang.method(expected)
        for shown in re.findall(rf"(?m)^{re.escape(label)}[ \t]+(\S[^\n]*)$", text):
            if not _norm(shown).startswith(_norm(str(expected))):
                # As many words as the signed value has: the rest of the line is another field.
                refuse(name, " ".join(shown.split()[:len(str(expected).split())])[:80], expected)
    return out


def _expected_for(name: str, payload: dict, digest: str):
    s = payload.get("sanitization", {})
    return {"certificate id": payload.get("certificate_id"), "digest": digest, "method": s.get("method"),
            "date": payload.get("issued_at")}.get(name)


# ------------------------------------------------------------------ the whole check


@dataclass
class PdfCheck:
    """A ``CheckReport`` of the attached envelope, plus what the PDF itself adds."""

    report: check.CheckReport
    embedded_key_id: str | None = None
    integrity_only: bool = False  # checked against the PDF's own key: intact, signer unproven
    notes: list[str] = field(default_factory=list)


def _refused(code: str, reason: str, embedded: str | None = None) -> PdfCheck:
    return PdfCheck(check.CheckReport(False, [reason], codes=[code]), embedded)


def check_pdf(data: bytes, trusted_keys: dict | None) -> PdfCheck:
    """Check a certificate PDF. ``trusted_keys`` None: no key was given, so the key
    embedded in the PDF is used, which proves integrity only (``integrity_only``)."""
    try:
        pdf = read_pdf(data)
    except CertificateError as exc:
        return _refused(exc.detail.get("code", NOT_PDF), str(exc))
    if ENVELOPE_NAME not in pdf.attachments:
        return _refused(ATTACHMENT, f"{ATTACHMENT}: no {ENVELOPE_NAME} attached: not a PDF that carries its certificate")
    embedded_kid = None
    embedded_keys: dict = {}
    if KEY_NAME in pdf.attachments:
        try:
            k = load_public_key(pdf.attachments[KEY_NAME], source=f"attachment {KEY_NAME}")
        except CertificateError as exc:
            return _refused(ATTACHMENT, f"{ATTACHMENT}: {exc}")
        embedded_kid = key_id(k)
        embedded_keys = {embedded_kid: k}
    integrity_only = trusted_keys is None
    if integrity_only and not embedded_keys:
        return _refused(ATTACHMENT, f"{ATTACHMENT}: no key given and no {KEY_NAME} attached to check it with")
    keys = embedded_keys if integrity_only else trusted_keys
    report = check.check_certificate(pdf.attachments[ENVELOPE_NAME], keys, payload_type=env.ERASURE_TYPE)
    result = PdfCheck(report, embedded_kid, integrity_only)
    if not report.valid:
        # Name the attachment: the page may be fine, its proof is not.
        report.reasons = [f"{ATTACHMENT} {ENVELOPE_NAME}: {r}" for r in report.reasons]
        if report.codes[:1] == [env.UNKNOWN_KEY] and embedded_kid:
            report.reasons[0] += f" (the key attached to the PDF has fingerprint {embedded_kid[:16]}...)"
        return result
    if embedded_kid and embedded_kid != report.key_id:
        report.valid = False
        report.codes.insert(0, ATTACHMENT)
        report.reasons.insert(0, f"{ATTACHMENT} {KEY_NAME}: the attached key {embedded_kid[:16]}... "
                                 f"is not the key that signed the certificate ({report.key_id[:16]}...)")
        return result
    problems = text_problems(pdf.text, report.payload or {}, report.digest or "", report.key_id)
    if problems:
        report.valid = False
        report.codes[:0] = [TEXT] * len(problems)
        report.reasons[:0] = problems
    return result
