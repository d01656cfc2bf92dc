"""What makes a certificate PDF prove itself: the signed envelope and the station's public
key travel inside it as PDF file attachments (ISO 32000 embedded files).

A reader opens the attachment pane of any PDF viewer and finds the very JSON that
``ardoise verify`` checks, so a PDF sent on its own by e-mail is still checkable. The
embedded key proves nothing by itself (whoever forges the envelope embeds their own key):
it proves integrity only, and trust comes from comparing its fingerprint, printed on the
page, with the key the workshop or its collector publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.certify.envelope import dump_envelope
from agent.certify.keys import key_id, load_public_key

# Fixed names: the checker finds them without guessing, and a person who saves them from
# a PDF viewer gets files `ardoise verify --key` takes as they are.
ENVELOPE_NAME = "certificate.json"
KEY_NAME = "station-key.pub.pem"


@dataclass(frozen=True)
class Proof:
    """The bytes a certificate PDF carries: its signed envelope and the signer's public key."""

    envelope: bytes
    public_pem: str

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key: the station key id, recomputable with openssl."""
        return key_id(load_public_key(self.public_pem.encode("ascii"), source="embedded key"))

    @classmethod
    def of(cls, envelope: dict | bytes, public_pem: str) -> "Proof":
        return cls(envelope if isinstance(envelope, bytes) else dump_envelope(envelope), public_pem)


def grouped(fingerprint: str) -> str:
    """64 hex digits in groups of four, so a person can compare it with the published one."""
    return " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))


def fingerprint_value(proof: Proof) -> str:
    """What the page prints beside "Station key fingerprint": the digits, then what they are for."""
    from agent.i18n import _

    return grouped(proof.fingerprint) + "\n" + _(
        "Attached to this PDF: the signed certificate ({envelope}) and this key ({key}). "
        "Trust the key only if this fingerprint matches the one your collector or workshop publishes.").format(
        envelope=ENVELOPE_NAME, key=KEY_NAME)


def attach(doc, proof: Proof) -> None:
    """Embed the envelope and the key in ``doc`` (an ``fpdf.FPDF``) as file attachments."""
    doc.embed_file(bytes=proof.envelope, basename=ENVELOPE_NAME, mime_type="application/json",
                   desc="Signed certificate (DSSE envelope): the proof this PDF renders")
    doc.embed_file(bytes=proof.public_pem.encode("ascii"), basename=KEY_NAME, mime_type="application/x-pem-file",
                   desc="Public key of the station that signed the certificate (integrity only; trust its fingerprint)")
