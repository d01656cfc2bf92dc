"""What each verification reason code means, in the reader's language.

``check`` and ``envelope`` report a stable code with each reason (``bad-signature``...) and
a detail for developers, in English. People read the sentence for the code, from the
catalog, with the detail after it (a path, a field name) when it adds something.
"""

from __future__ import annotations

from agent.certify import check
from agent.certify import envelope as env
from agent.i18n import N_, SOURCE_LANGUAGE, Language

SENTENCES = {
    env.NOT_JSON: N_("the file is not JSON: it is not an Ardoise certificate"),
    env.TRUNCATED: N_("the file is cut short (truncated copy?)"),
    env.SHAPE: N_("the file is not a signed envelope (DSSE)"),
    env.PAYLOAD_TYPE: N_("the envelope holds neither an erasure certificate nor an audit report"),
    env.ENCODING: N_("the signed content cannot be decoded"),
    env.UNKNOWN_KEY: N_("signed by a key that is not trusted here"),
    env.BAD_SIGNATURE: N_("the signature does not match the content: the certificate was altered"),
    check.SCHEMA: N_("the content does not follow the certificate schema"),
    check.INCONSISTENT: N_("the content contradicts itself"),
    check.MISSING_FILE: N_("the file cannot be read"),
    # A certificate PDF (agent/certify/pdf_check.py) and the collector's published keys.
    "not-pdf": N_("the file is not a readable PDF"),
    "pdf-attachment": N_("the certificate attached to the PDF is missing or does not check"),
    "pdf-text": N_("the page of the PDF contradicts its attached certificate: it was altered"),
    "revoked-key": N_("the signing station's key was revoked before this certificate was issued"),
    env.NOT_CANONICAL: N_("the signed content is not in canonical form"),
}


# Codes whose sentence says it all: their detail is a developer's (a JSON parser's message).
SELF_EXPLAINED = {env.NOT_JSON, env.TRUNCATED, env.ENCODING, env.BAD_SIGNATURE}


def explain(code: str | None, reason: str, lang: Language) -> str:
    """``bad-signature: ...`` -> the sentence for its code, then the detail in parentheses
    when it names something (a field, a key, a path); a reason without a known code is
    shown as it is."""
    sentence = SENTENCES.get(code or "")
    if sentence is None or lang.code == SOURCE_LANGUAGE:
        return reason  # English keeps the reason as the checker wrote it: code, then detail
    if code in SELF_EXPLAINED:
        return lang.gettext(sentence)
    detail = reason.split(": ", 1)[1] if reason.startswith(f"{code}: ") else reason
    return f"{lang.gettext(sentence)} ({detail})"
