"""Organisations, people, memberships and login sessions: the only code that writes them.

Passwords are hashed with argon2id (argon2-cffi, its default parameters). Each write
records an audit event (server_stub.accounts.events)."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from agent.i18n import T_
from server_stub.accounts import events
from server_stub.accounts.events import Actor
from server_stub.accounts.models import (ADMIN, COORDINATOR, DONOR, DONOR_VIEWER, KINDS, MANAGER, ROLES, TECHNICIAN,
                                         LoginSession, Membership, Organisation, User)
from server_stub.auth import password_problem
from server_stub.db import Database
from server_stub.errors import Conflict, Malformed, NotFound, Unauthorized
from server_stub.models import utcnow

SESSION_HOURS = 12
_HASHER = PasswordHasher()
# Verified when the email is unknown, so that a wrong email costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
_VERIFY_SLOTS = threading.BoundedSemaphore(2)
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\Z")
# Which roles make sense in which kind of organisation.
ROLES_OF_KIND = {COORDINATOR: (ADMIN, MANAGER, TECHNICIAN), "workshop": (ADMIN, MANAGER, TECHNICIAN),
                 DONOR: (ADMIN, DONOR_VIEWER)}


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def organisation_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "an organisation needs a name"
    if len(name) > 200 or name != name.strip() or not name.isprintable():
        return "an organisation name has at most 200 printable characters, without edge spaces"
    return None


def create_org(db: Database, name: str, kind: str, actor: Actor) -> Organisation:
    if problem := organisation_problem(name):
        raise Malformed(problem)
    if kind not in KINDS:
        raise Malformed(f"kind must be one of {', '.join(KINDS)}")
    with db.session() as s, s.begin():
        if s.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
            raise Conflict(f"an organisation named {name!r} exists already")
        org = Organisation(name=name, kind=kind, created_at=utcnow())
        s.add(org)
        s.flush()
        events.record(s, actor, "org:create", org.id, name=name, kind=kind)
    return org


def find_org(db: Database, ref: str | int) -> Organisation:
    """An organisation by name or by id."""
    with db.session() as s:
        org = s.get(Organisation, ref) if isinstance(ref, int) else s.scalar(
            select(Organisation).where(Organisation.name == ref))
        if org is None and isinstance(ref, str) and ref.isdigit():
            org = s.get(Organisation, int(ref))
    if org is None:
        raise NotFound(f"no organisation {ref}")
    return org


def organisations(db: Database, kind: str | None = None) -> list[Organisation]:
    q = select(Organisation).order_by(Organisation.kind, Organisation.name)
    if kind:
        q = q.where(Organisation.kind == kind)
    with db.session() as s:
        return list(s.scalars(q))


def create_user(db: Database, email: str, password: str, org: Organisation, role: str, actor: Actor,
                name: str | None = None) -> User:
    """A person with a first role in one organisation."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise Malformed(f"{email!r} is not an email address")
    if problem := password_problem(password):
        raise Malformed(problem.replace("the admin password", "a password"))
    _check_role(org, role)
    with db.session() as s, s.begin():
        if s.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"a person with email {email} exists already")
        user = User(email=email, name=name, password_hash=hash_password(password), created_at=utcnow())
        s.add(user)
        s.flush()
        s.add(Membership(user_id=user.id, org_id=org.id, role=role))
        events.record(s, actor, "user:create", org.id, email=email, role=role, organisation=org.name)
    return user


def grant(db: Database, email: str, org: Organisation, role: str, actor: Actor) -> None:
    """Give a person a role in another organisation (or change the one they have)."""
    _check_role(org, role)
    with db.session() as s, s.begin():
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"no person with email {email}")
        m = s.get(Membership, (user.id, org.id))
        if m is None:
            s.add(Membership(user_id=user.id, org_id=org.id, role=role))
        else:
            m.role = role
        events.record(s, actor, "user:grant", org.id, email=user.email, role=role, organisation=org.name)


def disable(db: Database, email: str, actor: Actor) -> None:
    """Refuse a person's logins from now on and end their sessions (accounts are kept, so
    the audit log keeps naming them)."""
    with db.session() as s, s.begin():
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"no person with email {email}")
        if user.disabled_at is None:
            user.disabled_at = utcnow()
        s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
        for (org_id,) in s.execute(select(Membership.org_id).where(Membership.user_id == user.id)).all() or [(None,)]:
            events.record(s, actor, "user:disable", org_id, email=user.email)


def people(db: Database) -> list[tuple[User, list[tuple[str, str]]]]:
    """Every person with their (organisation, role) pairs."""
    with db.session() as s:
        users = list(s.scalars(select(User).order_by(User.email)))
        roles: dict[int, list[tuple[str, str]]] = {}
        for uid, name, role in s.execute(select(Membership.user_id, Organisation.name, Membership.role)
                                         .join(Organisation, Organisation.id == Membership.org_id)
                                         .order_by(Organisation.name)):
            roles.setdefault(uid, []).append((name, role))
    return [(u, roles.get(u.id, [])) for u in users]


def _check_role(org: Organisation, role: str) -> None:
    if role not in ROLES:
        raise Malformed(f"role must be one of {', '.join(ROLES)}")
    if role not in ROLES_OF_KIND[org.kind]:
        raise Malformed(f"a {org.kind} organisation has roles {', '.join(ROLES_OF_KIND[org.kind])}, not {role}")


def accounts_exist(db: Database) -> bool:
    """Whether anyone has an account. Remembered once true: accounts are never deleted,
    only disabled, so the answer never goes back."""
    if not getattr(db, "accounts_seen", False):
        with db.session() as s:
            db.accounts_seen = bool(s.scalar(select(func.count()).select_from(User)))
    return db.accounts_seen


def check_password(db: Database, email: str, password: str) -> User:
    """The person with this email and password, or ``Unauthorized`` (same words, and the
    same time, for an unknown email and a wrong password). Slow on purpose: call it off
    the event loop."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
    # argon2id takes 64 MiB and tens of milliseconds per check, by design: a few at a time,
    # so that a spray of logins from many addresses cannot exhaust memory or every core.
    with _VERIFY_SLOTS:
        try:
            _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            user = None
    if user is None or user.disabled_at is not None:
        raise Unauthorized(T_("wrong email or password"))
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(db: Database, user: User, actor: Actor) -> str:
    """A new login session; returns the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.session() as s, s.begin():
        s.execute(delete(LoginSession).where(LoginSession.expires_at < now))
        s.add(LoginSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                           expires_at=now + timedelta(hours=SESSION_HOURS), client=actor.client))
        events.record(s, actor, "session:login", None, email=user.email)
    return token


def close_session(db: Database, token: str, actor: Actor) -> None:
    with db.session() as s, s.begin():
        gone = s.execute(delete(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if gone.rowcount:
            events.record(s, actor, "session:logout", None)


@dataclass(frozen=True)
class SessionUser:
    user_id: int
    email: str
    name: str | None
    memberships: tuple[tuple[int, str, str, str], ...]  # (org id, org name, org kind, role)


def session_user(db: Database, token: str) -> SessionUser | None:
    """The person logged in with this cookie token, or None (unknown, expired, disabled)."""
    if not token or len(token) > 100:
        return None
    now: datetime = utcnow()
    with db.session() as s:
        row = s.execute(select(User).join(LoginSession, LoginSession.user_id == User.id)
                        .where(LoginSession.token_hash == _token_hash(token), LoginSession.expires_at > now,
                               User.disabled_at.is_(None))).first()
        if row is None:
            return None
        user = row[0]
        ms = s.execute(select(Organisation.id, Organisation.name, Organisation.kind, Membership.role)
                       .join(Membership, Membership.org_id == Organisation.id)
                       .where(Membership.user_id == user.id).order_by(Organisation.name)).all()
    return SessionUser(user.id, user.email, user.name, tuple(tuple(m) for m in ms))
