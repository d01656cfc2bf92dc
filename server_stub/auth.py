"""The bootstrap admin: HTTP Basic, user ``admin``, password from the environment.

People with accounts log in with sessions instead (server_stub.accounts); who may read
what is decided in server_stub.accounts.access.

Basic works in every browser without JavaScript. There is no default password: without
one, admin is off and says so. A weak one is refused at start (``password_problem``), and
wrong guesses lock the guesser out (server_stub.lockout).
"""

from __future__ import annotations

import base64
import binascii
import secrets

from fastapi import Request

from server_stub.errors import AdminDisabled, Unauthorized
from server_stub.settings import Settings

DISABLED = "admin is disabled: set ARDOISE_ADMIN_PASSWORD (or --admin-password-file) and restart the collector"
REALM = 'Basic realm="ardoise-collector", charset="UTF-8"'
ACCOUNT = "admin"
MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 6


class LoginRequired(Unauthorized):
    """401 with a Basic challenge, so a browser asks for the password."""


def password_problem(password: str) -> str | None:
    """Why this admin password is too weak, or None. The rule of docs/security.md:
    at least 12 characters, at least 6 of them different."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the admin password must have at least {MIN_PASSWORD_LENGTH} characters (it has {len(password)})"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"the admin password must have at least {MIN_DISTINCT_CHARACTERS} different characters"
    return None


def client_address(request: Request) -> str:
    # uvicorn puts the X-Forwarded-For address here only for trusted proxies.
    return request.client.host if request.client else "unknown"


def check_admin(settings: Settings, request: Request) -> None:
    if not settings.admin_enabled:
        raise AdminDisabled(DISABLED)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise LoginRequired("admin login required")
    guard = request.app.state.ctx.login_guard
    client = client_address(request)
    # Locked out means refused before the password is even looked at: the right
    # password is no way around a lockout.
    guard.check(client, ACCOUNT)
    try:
        user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LoginRequired("malformed Basic credentials") from None
    ok_user = secrets.compare_digest(user.encode(), ACCOUNT.encode())
    ok_pw = secrets.compare_digest(password.encode(), settings.admin_password.encode())
    if not (ok_user and ok_pw):
        guard.failed(client, ACCOUNT)
        raise LoginRequired("wrong admin user or password")
    guard.succeeded(client)
