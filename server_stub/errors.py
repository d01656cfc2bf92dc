"""Rejections of the collector, in the agent's one error hierarchy.

Each carries the HTTP status the API answers with; the message is the one-line ``reason``.
"""

from __future__ import annotations

from agent.errors import ArdoiseError


class Rejected(ArdoiseError):
    """A request the collector refuses; nothing was stored."""

    kind = "rejected"
    http_status = 400


class Malformed(Rejected):
    http_status = 400


class Unauthorized(Rejected):
    http_status = 401


class Forbidden(Rejected):
    kind = "forbidden"
    http_status = 403


class UnsupportedMediaType(Rejected):
    http_status = 415


class Conflict(Rejected):
    http_status = 409


class TooLarge(Rejected):
    http_status = 413


class Unprocessable(Rejected):
    http_status = 422


class RateLimited(Rejected):
    kind = "rate-limited"
    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(Rejected):
    kind = "not-found"
    http_status = 404


class AdminDisabled(Rejected):
    kind = "disabled"
    http_status = 503


class Unavailable(Rejected):
    kind = "unavailable"
    http_status = 503
