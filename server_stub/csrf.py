"""Cross-site request forgery defences of the admin side.

A browser that holds the admin's Basic credentials attaches them to any request, even one
sent by a page of another origin. Three layers keep such a page from changing anything:

- every state-changing admin request must come from this origin or from no browser page
  at all (``Sec-Fetch-Site`` same-origin/none, and ``Origin``, when present, equal to ours);
- the JSON admin API takes only ``Content-Type: application/json``, which a cross-origin
  page cannot send without a CORS preflight that the collector never grants;
- the HTML admin forms carry a token bound to a per-browser-session cookie (SameSite=Strict,
  HttpOnly), signed with the collector's secret: each new session gets a new token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from server_stub.errors import Forbidden, UnsupportedMediaType

SESSION_COOKIE = "ardoise_session"
_SAFE_FETCH_SITES = ("same-origin", "none")


def own_origin(request: Request) -> str:
    # request.url honours X-Forwarded-Proto from trusted proxies (uvicorn proxy_headers).
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}".lower()


def check_same_origin(request: Request) -> None:
    """Refuse (403) a state-changing request that a page of another origin made."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        # The browser's own judgement, which no page can forge, and which a reverse proxy
        # that rewrites Host or port cannot confuse.
        if site.lower() not in _SAFE_FETCH_SITES:
            raise Forbidden(f"cross-site admin request refused (Sec-Fetch-Site: {site[:40]})")
        return
    # Browsers without Fetch Metadata: compare Origin with the address we were reached at.
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != own_origin(request):
        raise Forbidden(f"cross-origin admin request refused (Origin: {origin[:100]})")


def require_json(request: Request) -> None:
    """A JSON endpoint takes only JSON; a form or text/plain post is refused (415)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")


def require_json_or_empty(request: Request) -> None:
    """For bodiless POSTs: no Content-Type, or JSON; never a form's or text/plain."""
    if request.headers.get("content-type"):
        require_json(request)


def _token_for(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), b"csrf\0" + session_id.encode(), hashlib.sha256).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_token(request: Request, secret: str) -> tuple[str, str | None]:
    """The form token of this browser session, and a new session id when there was none
    (the caller then sets the cookie with ``set_session_cookie``)."""
    sid = request.cookies.get(SESSION_COOKIE)
    new_sid = None
    if not sid or len(sid) > 100:
        sid = new_sid = new_session_id()
    return _token_for(secret, sid), new_sid


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    # No Max-Age: it ends with the browser session, and a new session gets a new token.
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def check_form_token(request: Request, secret: str, value: object) -> None:
    sid = request.cookies.get(SESSION_COOKIE)
    # Bytes: compare_digest refuses non-ASCII str (a TypeError would be a 500).
    if (not sid or not isinstance(value, str) or not value
            or not secrets.compare_digest(value.encode(), _token_for(secret, sid).encode())):
        raise Forbidden("admin form token missing or wrong (reload the page)")
