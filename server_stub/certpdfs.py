"""Each certificate's PDF, rendered once and kept (table certificate_pdfs, schema 4).

A certificate PDF is the agent's self-verifying one (agent.certify.pdf with pdf_embed: the
signed envelope and the station's key attached, so ``ardoise verify cert.pdf`` checks it
alone). Rendering one costs 0.05 to 0.16 s of pure-Python CPU (fpdf2 line breaking), so a
5,000-device bundle that rendered them all would take 4 to 13 minutes. Instead:

- after an upload is stored, its id goes on a bounded queue; one thread per collector
  process renders from it, in the language of the certificate's lot, and only while no
  upload has arrived for ``IDLE_S``: the render holds Python's GIL, and an upload burst
  must not queue behind it. A full queue drops the newest ids (they are rendered when
  first needed), so a burst never grows memory;
- the bundle (server_stub.lots.wiring.stream) takes the stored PDFs, renders only the
  missing ones or those in another language, and stores what it rendered.

The stored bytes are a cache of what the envelope proves, never a second source of truth.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from agent.i18n import DEFAULT_TIMEZONE, Language, speaking
from server_stub.db import Database
from server_stub.models import Certificate, CertificatePdf, Station, utcnow

log = logging.getLogger("ardoise.collector")

DEFAULT_LANGUAGE = "fr"  # a lot record's default (server_stub.lots.models.Lot.language)


@dataclass(frozen=True)
class Source:
    """What a certificate PDF is made of: the row's envelope and its station's public key."""

    id: str
    digest: str
    key_id: str
    envelope: str
    public_pem: str | None


def render(src: Source, language: str, base_url: str | None, timezone: str = DEFAULT_TIMEZONE) -> bytes:
    """The certificate PDF exactly as the certificate page serves it (envelope and key
    attached, the QR code to this certificate's page at ``base_url``), in ``language``."""
    from agent.certify.links import certificate_url
    from agent.certify.pdf import render_certificate_pdf
    from agent.certify.pdf_embed import Proof

    payload = json.loads(base64.b64decode(json.loads(src.envelope)["payload"]))
    with speaking(Language.get(language, timezone)):
        return render_certificate_pdf(payload, src.digest, src.key_id,
                                      proof=Proof(src.envelope.encode("utf-8"), src.public_pem) if src.public_pem else None,
                                      qr_data=certificate_url(base_url, src.id) if base_url else None)


def stored(db: Database, ids: Iterable[str], language: str) -> dict[str, bytes]:
    """The stored PDFs of these certificates in this language (one query; give a batch)."""
    ids = list(ids)
    if not ids:
        return {}
    with db.engine.connect() as conn:
        return {r[0]: bytes(r[1]) for r in conn.execute(
            select(CertificatePdf.certificate_id, CertificatePdf.pdf)
            .where(CertificatePdf.certificate_id.in_(ids), CertificatePdf.language == language))}


def store(db: Database, certificate_id: str, language: str, pdf: bytes) -> None:
    """Keep this PDF, replacing one in another language. Two renderers racing store the
    same bytes' equivalent: the loser's insert is simply dropped."""
    try:
        with db.write_lock(), db.engine.begin() as conn:
            conn.execute(delete(CertificatePdf).where(CertificatePdf.certificate_id == certificate_id))
            conn.execute(insert(CertificatePdf).values(certificate_id=certificate_id, language=language, pdf=pdf,
                                                       rendered_at=utcnow()))
    except IntegrityError:
        pass


def has(db: Database, certificate_id: str, language: str) -> bool:
    with db.engine.connect() as conn:
        return conn.execute(select(CertificatePdf.language).where(
            CertificatePdf.certificate_id == certificate_id, CertificatePdf.language == language)).first() is not None


def source_of(db: Database, certificate_id: str) -> tuple[Source, str] | None:
    """The certificate's PDF source and its lot's language (the lot record of its name in
    its station's workshop; French, the lot default, when there is no record yet)."""
    from server_stub.lots.models import Lot

    with db.engine.connect() as conn:
        row = conn.execute(select(Certificate.id, Certificate.digest, Certificate.key_id, Certificate.envelope,
                                  Station.public_pem, Certificate.lot, Station.org_id)
                           .join(Station, Station.id == Certificate.station_id)
                           .where(Certificate.id == certificate_id)).first()
        if row is None:
            return None
        language = None
        if row.lot is not None and row.org_id is not None:
            language = conn.execute(select(Lot.language).where(Lot.name == row.lot, Lot.workshop_id == row.org_id)).scalar()
    return Source(row.id, row.digest, row.key_id, row.envelope, row.public_pem), language or DEFAULT_LANGUAGE


class Renderer:
    """The bounded background queue of certificates whose PDF is still to be rendered."""

    IDLE_S = 1.0  # render only after this long without an upload
    QUEUE_MAX = 10_000  # ids (about 100 bytes each); beyond, rendered when first needed

    def __init__(self, db: Database, timezone: str = DEFAULT_TIMEZONE, *, idle_s: float | None = None,
                 queue_max: int | None = None) -> None:
        self.db, self.timezone = db, timezone
        self.idle_s = self.IDLE_S if idle_s is None else idle_s
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue(self.QUEUE_MAX if queue_max is None else queue_max)
        self._last_upload = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rendered = self.dropped = self.failed = 0

    def offer(self, certificate_id: str, base_url: str) -> None:
        """Called by an upload once stored: never blocks, never fails the upload."""
        self._last_upload = time.monotonic()
        try:
            self._queue.put_nowait((certificate_id, base_url))
        except queue.Full:
            self.dropped += 1

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="certificate-pdfs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                certificate_id, base_url = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            while not self._stop.is_set() and (wait := self._last_upload + self.idle_s - time.monotonic()) > 0:
                self._stop.wait(wait)
            if self._stop.is_set():
                return
            self.render_one(certificate_id, base_url)

    def render_one(self, certificate_id: str, base_url: str) -> bool:
        """Render and store one certificate's PDF unless it is stored already; False when
        it could not be (it is then rendered when first needed)."""
        try:
            found = source_of(self.db, certificate_id)
            if found is None:
                return False
            src, language = found
            if has(self.db, certificate_id, language):
                return True
            store(self.db, certificate_id, language, render(src, language, base_url, self.timezone))
            self.rendered += 1
            return True
        except (SQLAlchemyError, ValueError, KeyError, TypeError, OSError) as exc:
            # A PDF is a cache: a failure here costs a render later, never an upload.
            self.failed += 1
            log.warning("certificate %s: PDF not rendered in the background: %s", certificate_id,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return False
