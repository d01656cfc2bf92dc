"""Who is asking, and what they may see and do: the one place for the access rules.

A request is made by one principal:
- the bootstrap admin (HTTP Basic, ``ARDOISE_ADMIN_PASSWORD``): sees and manages everything;
- a person logged in with a session cookie: sees what their organisations see;
- nobody: allowed to read only on a collector that has no accounts yet and was not started
  with ``--require-login`` (a single workshop's embedded collector, as before accounts).

What each sees (docs/collector.md): a coordinator's people see everything; a workshop's
people see their workshop's stations, lots, certificates, audit reports and live drives;
a donor's people see the lots the donor gave, and the certificates and audit reports in
them. Everything else answers 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import ColumnElement, and_, exists, false, or_, select, tuple_

from agent.i18n import T_
from server_stub import auth, csrf
from server_stub.accounts import service
from server_stub.accounts.events import Actor
from server_stub.accounts.models import ADMIN, COORDINATOR, DONOR, MANAGER, WORKSHOP
from server_stub.errors import Forbidden
from server_stub.models import AuditDisk, AuditReport, Certificate, Station

LOGIN_COOKIE = "ardoise_login"
BASIC_ADMIN = "admin (Basic)"


@dataclass(frozen=True)
class Principal:
    name: str  # an email, BASIC_ADMIN, or "anonymous"
    client: str
    user_id: int | None = None
    # (org id, org name, kind, role) of each membership
    memberships: tuple[tuple[int, str, str, str], ...] = ()
    superuser: bool = False  # the bootstrap admin
    open_reading: bool = False  # nobody, on a collector without accounts

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.client)

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None or self.superuser

    def _of_kind(self, kind: str, roles: tuple[str, ...] | None = None) -> frozenset[int]:
        return frozenset(o for o, _, k, r in self.memberships if k == kind and (roles is None or r in roles))

    @property
    def sees_everything(self) -> bool:
        return self.superuser or self.open_reading or bool(self._of_kind(COORDINATOR))

    @property
    def workshops(self) -> frozenset[int]:
        """Workshops whose stations and lots this principal sees (beyond everything)."""
        return self._of_kind(WORKSHOP)

    @property
    def donors(self) -> frozenset[int]:
        return self._of_kind(DONOR)

    def manages_everything(self) -> bool:
        return self.superuser or bool(self._of_kind(COORDINATOR, (ADMIN, MANAGER)))

    def manages(self, workshop_id: int | None) -> bool:
        """May create enrollment tokens and lots for this workshop and revoke its stations."""
        return self.manages_everything() or (workshop_id is not None
                                              and workshop_id in self._of_kind(WORKSHOP, (ADMIN, MANAGER)))

    def managed_workshops(self) -> frozenset[int] | None:
        """None: every workshop."""
        return None if self.manages_everything() else self._of_kind(WORKSHOP, (ADMIN, MANAGER))

    def is_admin(self) -> bool:
        return self.superuser or any(r == ADMIN for *_, r in self.memberships)

    def event_scope(self) -> frozenset[int] | None:
        """Organisations whose audit log this principal reads; None: the whole log."""
        if self.superuser or self._of_kind(COORDINATOR, (ADMIN,)):
            return None
        return frozenset(o for o, _, _, r in self.memberships if r == ADMIN)


def _session_principal(request: Request, client: str) -> Principal | None:
    token = request.cookies.get(LOGIN_COOKIE)
    if not token:
        return None
    user = service.session_user(request.app.state.ctx.db, token)
    if user is None:
        return None
    return Principal(user.email, client, user.user_id, user.memberships)


def principal(request: Request, *, required: bool = True) -> Principal:
    """The principal of this request. A Basic header is checked as the bootstrap admin's
    (with its lockout); else the session cookie; else nobody, refused with 401 unless
    the collector still reads openly (or ``required`` is False)."""
    ctx = request.app.state.ctx
    client = auth.client_address(request)
    if request.headers.get("authorization", "").lower().startswith("basic "):
        auth.check_admin(ctx.settings, request)
        return Principal(BASIC_ADMIN, client, superuser=True)
    p = _session_principal(request, client)
    if p is not None:
        return p
    if not ctx.settings.require_login and not service.accounts_exist(ctx.db):
        return Principal("anonymous", client, open_reading=True)
    if not required:
        return Principal("anonymous", client)
    raise auth.LoginRequired("login required")


def reader(request: Request) -> Principal:
    return principal(request)


def admin(request: Request) -> Principal:
    """A principal who manages at least one workshop or administers an organisation.
    Nobody gets what the Basic admin gave before accounts: 401 with the challenge, or
    503 when admin is disabled and no account exists."""
    ctx = request.app.state.ctx
    p = principal(request, required=False)
    if not p.logged_in:
        if not service.accounts_exist(ctx.db):
            auth.check_admin(ctx.settings, request)
        raise auth.LoginRequired("login required")
    managed = p.managed_workshops()
    if not (p.is_admin() or managed is None or managed):
        raise Forbidden(T_("this needs an admin or manager role"))
    return p


def admin_write(request: Request) -> Principal:
    """An admin request that changes something: also from our own origin only."""
    p = admin(request)
    csrf.check_same_origin(request)
    return p


# ----------------------------------------------------------------------------- what each sees
# SQL conditions; None means no condition (everything). The queries apply them to every
# list, count, page and export.

def _workshop_stations(orgs: frozenset[int]):
    return select(Station.id).where(Station.org_id.in_(orgs))


def _donor_certificates(donors: frozenset[int]) -> ColumnElement:
    """Certificates filed under a lot (by name, within the uploading station's workshop)
    whose donor is one of ``donors``. Uncorrelated, and led by the indexed lot name: a
    donor's few lots are found first, not tested against every certificate."""
    theirs, pairs = _donor_lots(donors)
    return and_(Certificate.lot.in_(theirs), tuple_(Certificate.lot, Certificate.station_id).in_(pairs))


def _donor_lots(donors: frozenset[int]):
    """The names of the donors' lots, and (lot name, station id) of each station of those
    lots' workshops: what a certificate or audit report is filed under."""
    from server_stub.lots.models import Lot

    theirs = select(Lot.name).where(Lot.donor_id.in_(donors))
    pairs = (select(Lot.name, Station.id).join(Station, Station.org_id == Lot.workshop_id)
             .where(Lot.donor_id.in_(donors)))
    return theirs, pairs


def certificates(p: Principal) -> ColumnElement | None:
    if p.sees_everything:
        return None
    conds = []
    if p.workshops:
        conds.append(Certificate.station_id.in_(_workshop_stations(p.workshops)))
    if p.donors:
        conds.append(_donor_certificates(p.donors))
    return or_(*conds) if conds else false()


def stations(p: Principal) -> ColumnElement | None:
    """Stations (and their live drives): a workshop's own; donors see none."""
    if p.sees_everything:
        return None
    return Station.org_id.in_(p.workshops) if p.workshops else false()


def audits(p: Principal) -> ColumnElement | None:
    """A workshop's stations' reports; for a donor, the reports filed under its lots (a
    machine with no disk has nothing else) and those its certificates link to."""
    if p.sees_everything:
        return None
    conds = []
    if p.workshops:
        conds.append(AuditReport.station_id.in_(_workshop_stations(p.workshops)))
    if p.donors:
        linked = or_(Certificate.audit_ref == AuditReport.id,
                     and_(Certificate.audit_ref.is_(None),
                          Certificate.serial.in_(select(AuditDisk.serial).where(AuditDisk.audit_id == AuditReport.id))))
        conds.append(exists(select(Certificate.id).where(Certificate.station_id == AuditReport.station_id, linked,
                                                         _donor_certificates(p.donors))))
        theirs, pairs = _donor_lots(p.donors)
        conds.append(and_(AuditReport.lot.in_(theirs), tuple_(AuditReport.lot, AuditReport.station_id).in_(pairs)))
    return or_(*conds) if conds else false()


def lots(p: Principal) -> ColumnElement | None:
    from server_stub.lots.models import Lot

    if p.sees_everything:
        return None
    conds = []
    if p.workshops:
        conds.append(Lot.workshop_id.in_(p.workshops))
    if p.donors:
        conds.append(Lot.donor_id.in_(p.donors))
    return or_(*conds) if conds else false()
