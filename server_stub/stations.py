"""Enrollment tokens, station enrollment, bearer authentication and revocation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import bindparam, func, select, update

from agent.certify import keys as certkeys
from agent.errors import CertificateError
from agent.i18n import T_
from server_stub.accounts import events
from server_stub.accounts.events import CLI, Actor
from server_stub.accounts.models import WORKSHOP, Organisation
from server_stub.db import Database
from server_stub.lots.models import CLOSED, Lot
from server_stub.errors import Conflict, Forbidden, Malformed, NotFound, Unauthorized, Unprocessable
from server_stub.models import Certificate, EnrollmentToken, Station, utcnow
from server_stub.tokens import BEARER_PREFIX, ENROLLMENT_PREFIX, new_secret, new_station_id, secret_hash


@dataclass
class NewToken:
    token: str
    lot: str | None
    expires_at: datetime | None


@dataclass
class Enrollment:
    created: bool  # False: the same key re-presented its token and got a fresh bearer
    station_id: str
    key_id: str
    bearer: str
    lot: str | None


@dataclass
class StationInfo:
    station_id: str
    name: str | None
    key_id: str
    lot: str | None
    enrolled_at: datetime
    revoked_at: datetime | None
    certificates: int
    workshop: str | None = None

    def to_json(self) -> dict:
        return {
            "station_id": self.station_id, "name": self.name, "key_id": self.key_id, "lot": self.lot,
            "workshop": self.workshop,
            "enrolled_at": iso(self.enrolled_at), "revoked_at": iso(self.revoked_at), "certificates": self.certificates,
        }


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def iso(t: datetime | None) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t else None


def bound_hash(token: str, mac: str) -> str:
    """What is stored for a token bound to a NIC (netboot): the token alone matches nothing,
    an enrollment must also name that MAC among the machine's own (docs/netboot.md)."""
    return secret_hash(f"{token}#mac={mac.lower().replace(':', '-')}")


def create_token(db: Database, lot: str | None, ttl_hours: float | None = 168.0, *, workshop_id: int,
                 actor: Actor = CLI, mac: str | None = None) -> NewToken:
    """A one-time token that enrolls a station of ``workshop_id`` (for ``lot``, whose
    record is created when the workshop has none of that name); with ``mac``, bound to
    that NIC (netboot)."""
    from server_stub.lots.service import ensure_lot

    token = new_secret(ENROLLMENT_PREFIX)
    expires = utcnow() + timedelta(hours=ttl_hours) if ttl_hours else None
    stored = bound_hash(token, mac) if mac else secret_hash(token)
    with db.session() as s, s.begin():
        if lot and s.scalar(select(Lot.id).where(Lot.workshop_id == workshop_id, Lot.name == lot,
                                                 Lot.status == CLOSED)) is not None:
            raise Conflict(f"lot {lot} is closed: a new station cannot join it")
        stored = bound_hash(token, mac) if mac else secret_hash(token)
        s.add(EnrollmentToken(token_hash=stored, lot=lot or None, expires_at=expires, org_id=workshop_id))
        if lot:
            ensure_lot(s, lot, workshop_id, actor)
        events.record(s, actor, "token:create", workshop_id, lot=lot or None, expires_at=iso(expires))
    return NewToken(token, lot or None, expires)


def workshop_for(db: Database, ref: str | int | None, managed: frozenset[int] | None) -> int:
    """The workshop a new token or lot is for: the one named (by name or id), else the
    only one there is (or the only one ``managed``, None meaning all)."""
    if isinstance(ref, int) and not 0 < ref < 2**31 or isinstance(ref, str) and (
            len(ref) > 200 or not ref.isprintable() or not _is_text(ref)):
        raise NotFound(T_("no such workshop"))  # before any query: no overflow, no NUL for the database
    with db.session() as s:
        if ref is not None and ref != "":
            org = s.get(Organisation, ref) if isinstance(ref, int) else s.scalar(
                select(Organisation).where(Organisation.name == ref))
            if org is None and isinstance(ref, str) and ref.isdigit():
                org = s.get(Organisation, int(ref))
            if org is None or org.kind != WORKSHOP:
                raise NotFound(T_("no workshop {ref}", ref=ref))
            if managed is not None and org.id not in managed:
                raise Forbidden(T_("you do not manage workshop {workshop}", workshop=org.name))
            return org.id
        q = select(Organisation.id).where(Organisation.kind == WORKSHOP)
        if managed is not None:
            q = q.where(Organisation.id.in_(managed))
        ids = list(s.scalars(q.limit(2)))
    if len(ids) != 1:
        raise Malformed(T_("name the workshop: there are several") if ids else T_("name the workshop: you manage none"))
    return ids[0]


def enroll(db: Database, token: str, public_pem: str, name: str | None, claimed_key_id: str | None = None, *,
           proof: Callable[[Ed25519PublicKey, str], None], macs: list[str] | tuple[str, ...] = ()) -> Enrollment:
    """Enroll a key with a token. ``proof(public_key, key_id)`` raises unless the request
    proves possession of the private key (server_stub.enrollproof). ``macs``: the station's
    NICs, which a token minted for one MAC by the netboot service must name."""
    if "PRIVATE KEY" in public_pem:
        # The shared loader would take the public half of it; a station that sends its
        # private key has a bug worth hearing about, and the collector must not keep it.
        raise Unprocessable("public_key is a private key: send only the public key PEM")
    try:
        public_key = certkeys.load_public_key(public_pem.encode("utf-8"), source="public_key")
    except CertificateError as exc:
        raise Unprocessable(str(exc)) from None
    kid = certkeys.key_id(public_key)
    if claimed_key_id is not None and claimed_key_id != kid:
        raise Unprocessable(f"key_id {claimed_key_id[:16]}... does not match the public key (its id is {kid[:16]}...)")
    proof(public_key, kid)
    pem = certkeys.public_pem(public_key)
    bearer = new_secret(BEARER_PREFIX)
    now = utcnow()
    with db.session() as s, s.begin():
        hashes = [secret_hash(token), *(bound_hash(token, m) for m in macs[:16])]
        tok = s.scalars(select(EnrollmentToken).where(EnrollmentToken.token_hash.in_(hashes))
                        .with_for_update()).first()
        if tok is None:
            raise Unauthorized("unknown enrollment token")
        if tok.expires_at is not None and tok.expires_at < now:
            raise Unauthorized("enrollment token expired: ask the admin for a new one")
        revoked = s.scalars(select(Station).where(Station.key_id == kid, Station.revoked_at.is_not(None))).first()
        if revoked is not None:
            # Revocation sticks to the key: enrolling it again would make its certificates
            # (past and future) look trusted again.
            raise Forbidden(f"this key was revoked (station {revoked.id}): a lost or replaced stick needs a new "
                            "station key (delete station-key.pem on the stick) and a new token")
        if tok.used_at is not None:
            station = s.get(Station, tok.station_id) if tok.station_id else None
            if station is None or station.key_id != kid:
                raise Unauthorized("enrollment token already used by another key")
            # The first answer was lost on the way: the holder of the key gets a fresh
            # bearer and the old one retires. The name stays what the first enrollment set.
            station.bearer_hash = secret_hash(bearer)
            return Enrollment(False, station.id, kid, bearer, station.lot)
        active = s.scalars(select(Station).where(Station.key_id == kid, Station.revoked_at.is_(None))).first()
        if active is not None:
            raise Conflict(f"this key is already enrolled as station {active.id}")
        station = Station(id=new_station_id(), name=(name or None) and name[:128], key_id=kid, public_pem=pem,
                          bearer_hash=secret_hash(bearer), lot=tok.lot, enrolled_at=now, org_id=tok.org_id)
        # Compare-and-set, so two stations racing with one token cannot both get in
        # (SQLite has no SELECT ... FOR UPDATE).
        claimed = s.execute(update(EnrollmentToken)
                            .where(EnrollmentToken.id == tok.id, EnrollmentToken.used_at.is_(None))
                            .values(used_at=now, station_id=station.id)
                            .execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            raise Unauthorized("enrollment token already used by another key")
        s.add(station)
    return Enrollment(True, station.id, kid, bearer, station.lot)


@dataclass(frozen=True)
class StationRef:
    """What an authenticated request needs to know about its station (read without the ORM:
    this runs on every upload)."""

    id: str
    key_id: str
    public_pem: str
    lot: str | None
    revoked_at: datetime | None


# Built once: constructing a statement costs more than running it on SQLite.
_AUTH = select(Station.id, Station.key_id, Station.public_pem, Station.lot, Station.revoked_at).where(
    Station.bearer_hash == bindparam("bearer_hash"))


def authenticate(db: Database, authorization: str | None) -> StationRef:
    """The station named by an ``Authorization: Bearer`` header, or ``Unauthorized``."""
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer header")
    scheme, _, bearer = authorization.partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        raise Unauthorized("Authorization header is not 'Bearer <token>'")
    with db.single.connect() as conn:
        row = conn.execute(_AUTH, {"bearer_hash": secret_hash(bearer.strip())}).first()
    station = StationRef(*row) if row is not None else None
    if station is None:
        raise Unauthorized("unknown station or bad bearer token")
    if station.revoked_at is not None:
        raise Unauthorized(f"station {station.id} is revoked")
    return station


_key_cache: dict[str, Ed25519PublicKey] = {}
_key_lock = threading.Lock()


def public_key_of(station: Station | StationRef) -> Ed25519PublicKey:
    """The station's key object; cached because PEM parsing costs as much as a verify."""
    key = _key_cache.get(station.public_pem)
    if key is None:
        key = certkeys.load_public_key(station.public_pem.encode("ascii"))
        with _key_lock:
            _key_cache[station.public_pem] = key
    return key


def all_stations(db: Database, visible=None) -> list[Station]:
    """Every station, or those matching the access condition ``visible``."""
    q = select(Station).order_by(Station.enrolled_at)
    if visible is not None:
        q = q.where(visible)
    with db.session() as s:
        return list(s.scalars(q))


def trusted_keys(db: Database) -> tuple[dict[str, Ed25519PublicKey], dict[str, Station]]:
    """Every key ever enrolled (revoked ones too: their old certificates stay verifiable)."""
    keys: dict[str, Ed25519PublicKey] = {}
    by_key: dict[str, Station] = {}
    for st in all_stations(db):
        keys[st.key_id] = public_key_of(st)
        # Revocation sticks to the key: once any station of this key is revoked, the key is
        # named by a revoked station, even if an older database let it enroll again.
        if st.key_id not in by_key or (st.revoked_at is not None and by_key[st.key_id].revoked_at is None):
            by_key[st.key_id] = st
    return keys, by_key


def list_stations(db: Database, visible=None) -> list[StationInfo]:
    q = select(Station).order_by(Station.enrolled_at)
    if visible is not None:
        q = q.where(visible)
    with db.session() as s:
        counts = dict(s.execute(select(Certificate.station_id, func.count()).group_by(Certificate.station_id)).all())
        names = dict(s.execute(select(Organisation.id, Organisation.name)).all())
        return [StationInfo(st.id, st.name, st.key_id, st.lot, st.enrolled_at, st.revoked_at, counts.get(st.id, 0),
                            names.get(st.org_id))
                for st in s.scalars(q)]


def revoke(db: Database, station_id: str, actor: Actor = CLI, managed: frozenset[int] | None = None) -> StationInfo:
    """Revoke a station; ``managed`` (None: all) are the workshops the actor manages: any
    other station answers 404, as if it did not exist."""
    with db.session() as s, s.begin():
        st = s.get(Station, station_id)
        if st is None or (managed is not None and st.org_id not in managed):
            raise NotFound(f"no station {station_id}")
        if st.revoked_at is None:
            st.revoked_at = utcnow()
            events.record(s, actor, "station:revoke", st.org_id, station_id=st.id, name=st.name)
    return next(i for i in list_stations(db) if i.station_id == station_id)
