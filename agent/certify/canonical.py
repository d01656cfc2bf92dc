"""Deterministic JSON bytes for signed payloads.

A signature covers bytes, not objects: the same payload must always serialize to the same
bytes, on every station and in every Python version, or a verifier that re-serializes would
disagree with the signer. So: keys sorted, compact separators, UTF-8 without escaping, and
no floats at all (their text form is not portable; durations are integer milliseconds and
ratios are integer parts-per-million or strings).
"""

from __future__ import annotations

import json
from typing import Any

from agent.errors import CertificateError

# A certificate nests about six levels, an audit report about ten. Deeper is refused: the
# collector's pages and dataclass copies recurse, and a few hundred levels overflow them.
MAX_DEPTH = 48


def _check_types(value: Any, where: str = "$", depth: int = 0) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return
    if isinstance(value, float):
        raise CertificateError(f"payload value at {where} is a float; use an integer or a string")
    if depth >= MAX_DEPTH:
        raise CertificateError(f"payload is nested more than {MAX_DEPTH} levels deep at {where[:80]}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CertificateError(f"payload key {key!r} at {where} is not a string")
            # "x_reason\n" would pass a JSON-Schema "_reason$" in Python but not in Rust.
            if not key.isprintable():
                raise CertificateError(f"payload key {key!r} at {where} has a control character")
            _check_types(item, f"{where}.{key}", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_types(item, f"{where}[{i}]", depth + 1)
        return
    raise CertificateError(f"payload value at {where} has type {type(value).__name__}, which JSON cannot carry")


def canonical_bytes(payload: Any) -> bytes:
    """The exact bytes that get signed for ``payload``."""
    _check_types(payload)
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800") has no UTF-8 form
        raise CertificateError(f"payload has a string that is not Unicode text ({exc.reason})") from None


def without_floats(value: Any) -> Any:
    """Make a record from another stage signable: integral floats become ints, others strings.

    Used for free-form sections (SMART attributes, machine facts) whose producers may use
    floats; the certificate's own numeric fields are built as integers on purpose.
    """
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return int(value) if value.is_integer() else format(value, ".6g")
    if isinstance(value, dict):
        return {str(k): without_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_floats(v) for v in value]
    return value
