"""Admin authentication: HTTP Basic, user ``admin``, password from the environment.

Basic works in every browser without JavaScript. There is no default password: without
one, admin is off and says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from fastapi import Request

from server_stub.errors import AdminDisabled, Unauthorized
from server_stub.settings import Settings

DISABLED = "admin is disabled: set ARDOISE_ADMIN_PASSWORD (or --admin-password-file) and restart the collector"
REALM = 'Basic realm="ardoise-collector", charset="UTF-8"'


class LoginRequired(Unauthorized):
    """401 with a Basic challenge, so a browser asks for the password."""


def check_admin(settings: Settings, request: Request) -> None:
    if not settings.admin_enabled:
        raise AdminDisabled(DISABLED)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise LoginRequired("admin login required")
    try:
        user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LoginRequired("malformed Basic credentials") from None
    ok_user = secrets.compare_digest(user.encode(), b"admin")
    ok_pw = secrets.compare_digest(password.encode(), settings.admin_password.encode())
    if not (ok_user and ok_pw):
        raise LoginRequired("wrong admin user or password")


def check_reader(settings: Settings, request: Request) -> None:
    """Read pages are open unless the collector was started with --require-login."""
    if settings.require_login:
        check_admin(settings, request)


def csrf_token(settings: Settings) -> str:
    """Hidden form field of admin forms: a cross-site form post cannot know it."""
    key = (settings.admin_password or "").encode()
    return hmac.new(key, b"ardoise-collector admin form", hashlib.sha256).hexdigest()


def check_csrf(settings: Settings, value: str | None) -> None:
    if not value or not secrets.compare_digest(value, csrf_token(settings)):
        raise Unauthorized("admin form token missing or wrong (reload the page)")
