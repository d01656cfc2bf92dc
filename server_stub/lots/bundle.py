"""The donor's bundle: one ZIP with the lot report, every certificate and audit report, the
keys to check them and a README, streamed so that 5,000 devices stay in bounded memory.

The layout and the checks are those of ``agent.certify.bundle`` (``ardoise verify
--bundle``). Files are written one by one as the caller's iterables yield them; only the
manifest (a name, a size and a SHA-256 per file) grows with the lot, and it is written
last, signed by the collector key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

from agent.certify import bundle as layout
from agent.certify import envelope as env
from agent.certify.keys import StationKey
from server_stub.errors import Malformed


@dataclass(frozen=True)
class BundledCertificate:
    digest: str
    envelope: bytes  # the DSSE envelope file, as the station sent it
    pdf: bytes | None = None  # rendered from the payload when None


@dataclass(frozen=True)
class BundledAudit:
    digest: str
    envelope: bytes


README = {
    "fr": """Lot {lot} : certificats d'effacement et rapport de lot
=====================================================

Ce dossier contient la preuve, équipement par équipement, de ce qu'est devenu le lot
« {lot} » confié par {donor}.

- lot-report.pdf : le rapport de lot, à lire et à archiver ;
- lot-report.json : le même rapport, signé par la clé du collecteur (c'est la preuve) ;
- certificates/ : chaque certificat d'effacement (JSON signé par la station, et PDF) ;
- audit-reports/ : le rapport d'audit matériel de chaque machine (JSON signé) ;
- keys/ : la clé publique du collecteur et celles des stations ;
- manifest.json : la liste signée de tous les fichiers, avec leur empreinte SHA-256.

Vérifier le dossier (hors ligne) avec l'outil libre Ardoise :

    ardoise verify --bundle {zipname} --collector-key collecteur.pem

où collecteur.pem est la clé publique du collecteur obtenue directement auprès de
l'atelier ou du coordinateur (et non celle du dossier : c'est elle qui garantit l'origine).
La commande vérifie chaque signature, que le rapport liste exactement les certificats du
dossier, sans ajout ni manque, et que les comptes sont justes. Code de sortie 0 : dossier
valide ; 6 : dossier refusé, avec la raison ; 2 : clé ou commande invalide.
Clé du collecteur de ce dossier : {collector_key_id}
""",
    "en": """Lot {lot}: erasure certificates and lot report
==============================================

This folder holds the proof, device by device, of what became of the lot "{lot}" that
{donor} handed over.

- lot-report.pdf: the lot report, to read and to file;
- lot-report.json: the same report, signed by the collector's key (this is the proof);
- certificates/: every erasure certificate (JSON signed by the station, and PDF);
- audit-reports/: every machine's hardware audit report (signed JSON);
- keys/: the collector's public key and the stations' public keys;
- manifest.json: the signed list of every file, with its SHA-256 digest.

Check it offline with the free Ardoise tool:

    ardoise verify --bundle {zipname} --collector-key collector.pem

where collector.pem is the collector's public key obtained from the workshop or the
coordinator directly (not the copy in this folder: that key is what proves the origin).
It checks every signature, that the report lists exactly the certificates in the folder,
nothing added or missing, and that the counts add up. Exit status 0: valid; 6: refused,
with the reason; 2: a bad key or command line.
Collector key of this bundle: {collector_key_id}
""",
}


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file whose bytes are taken out as they arrive."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def stream_bundle(*, lot: str, donor: str, language: str, report_envelope: bytes, report_pdf: bytes,
                  collector_key: StationKey, station_keys: Mapping[str, str],
                  certificates: Iterable[BundledCertificate], audits: Iterable[BundledAudit],
                  zipname: str = "lot.zip", render_pdf: Callable[[bytes, str], bytes] | None = None) -> Iterator[bytes]:
    """The ZIP's bytes in chunks (one or a few files each), for a streaming response.

    ``station_keys`` maps key id to PEM, and must hold every key the report names (only
    those are written: the checker wants exactly them); ``collector_key`` signs the
    manifest (the report is signed already: ``report.sign_report``)."""
    named = _station_keys_named(report_envelope)
    missing = sorted(named - set(station_keys))
    if missing:
        raise Malformed(f"the lot report names station key {missing[0][:16]}, which is not given")
    sink = _Sink()
    manifest: dict[str, dict] = {}
    render = render_pdf or _render_certificate_pdf
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as z:

        def put(name: str, data: bytes) -> None:
            z.writestr(name, data)
            manifest[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        # Both languages, the lot's first: whoever opens it may not be who the lot was for.
        order = sorted(README, key=lambda lang: lang != language)
        readme = "\n\n".join(README[lang].format(lot=lot, donor=donor, zipname=zipname,
                                                  collector_key_id=collector_key.key_id) for lang in order)
        put("README.txt", readme.encode("utf-8"))
        put(layout.REPORT, report_envelope)
        put("lot-report.pdf", report_pdf)
        put(layout.COLLECTOR_KEY, collector_key.public_pem.encode("ascii"))
        for kid, pem in sorted((k, v) for k, v in station_keys.items() if k in named):
            put(f"keys/stations/{kid}.pem", pem.encode("ascii") if isinstance(pem, str) else pem)
        yield sink.take()
        for c in certificates:
            put(f"certificates/{c.digest}.json", c.envelope)
            put(f"certificates/{c.digest}.pdf", c.pdf if c.pdf is not None else render(c.envelope, c.digest))
            yield sink.take()
        for a in audits:
            put(f"audit-reports/{a.digest}.json", a.envelope)
            yield sink.take()
        signed = env.sign_envelope({"bundle_manifest": 1, "lot": lot, "files": manifest},
                                   env.BUNDLE_MANIFEST_TYPE, collector_key)
        z.writestr(layout.MANIFEST, env.dump_envelope(signed))
    yield sink.take()


def _station_keys_named(report_envelope: bytes) -> set[str]:
    try:
        payload = json.loads(base64.b64decode(json.loads(report_envelope)["payload"]))
        return set(payload["station_keys"])
    except (ValueError, KeyError, TypeError):
        raise Malformed("the lot report given is not a signed lot report envelope") from None


def write_bundle(out: BinaryIO, **kw) -> None:
    for chunk in stream_bundle(**kw):
        out.write(chunk)


def _render_certificate_pdf(envelope: bytes, digest: str) -> bytes:
    from agent.certify.pdf import render_certificate_pdf

    e = json.loads(envelope)
    payload = json.loads(base64.b64decode(e["payload"]))
    return render_certificate_pdf(payload, digest, e["signatures"][0].get("keyid", ""))
