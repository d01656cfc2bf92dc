"""Request helpers shared by the API and the pages: bounded bodies, JSON answers."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import JSONResponse

from server_stub.errors import Malformed, Rejected, TooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) before reading when Content-Length says too much, and while
    streaming when a chunked or lying client sends more than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise TooLarge(f"body of {int(declared)} bytes is over the {limit}-byte limit")
        except ValueError:
            raise Malformed("Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"body is not JSON ({exc})") from None
    except RecursionError:
        raise Malformed("body is nested too deeply") from None
    if not isinstance(value, dict):
        raise Malformed("body is not a JSON object")
    _unicode_text(value)
    return value


def _unicode_text(value, depth: int = 0) -> None:
    """JSON may spell a lone surrogate ("\ud800"), which no database, page or answer can
    encode: refuse it here, once, rather than as a 500 wherever it lands."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed("body has a string that is not Unicode text (a lone surrogate)") from None
    elif depth > 64:
        raise Malformed("body is nested too deeply")
    elif isinstance(value, dict):
        for k, v in value.items():
            _unicode_text(k, depth + 1)
            _unicode_text(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _unicode_text(v, depth + 1)


def answer(status_code: int, status: str, *, id: str | None = None, reason: str | None = None, **extra) -> JSONResponse:
    return JSONResponse({"status": status, "id": id, "reason": reason, **extra}, status_code=status_code)


def rejection(exc: Rejected) -> JSONResponse:
    status = exc.kind
    headers = {}
    extra = {}
    if hasattr(exc, "retry_after"):
        headers["Retry-After"] = str(int(exc.retry_after + 0.999))
        extra["retry_after"] = exc.retry_after
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    resp = answer(exc.http_status, status, reason=str(exc), **extra)
    resp.headers.update(headers)
    return resp
