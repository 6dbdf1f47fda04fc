"""RFC 8785 canonical JSON (JCS), byte-identical to the reference ``rfc8785``.

``canonicalize(value)`` is the one way a record, envelope, ledger entry or
checkpoint becomes bytes. Values are first checked and normalized by one
documented rule (see ``normalize``); anything else is rejected with the path of
the offending value, never silently changed.

Speed: the reference package is pure Python. Records whose canonical form does
not depend on JCS's number formatting or its UTF-16 key order (no floats, only
ASCII keys) are serialized by orjson with sorted keys, whose output for those
values is the same bytes (proved by the property tests against the reference);
everything else goes through the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import rfc8785

from evidence.errors import CanonicalizationError

MAX_SAFE_INTEGER = 2**53 - 1

JSONValue = Any  # a tree of dict[str, ...], list, str, int, float, bool, None


def normalize(value: JSONValue, path: str = "$") -> tuple[JSONValue, bool]:
    """Check ``value`` and apply the normalization rule.

    The rule, applied to values JCS cannot represent:
      * an aware ``datetime`` becomes its ISO 8601 UTC string ending in ``Z``;
        a naive one is rejected (its instant is unknown);
      * a ``date`` becomes ``YYYY-MM-DD``;
      * an integer beyond +-(2**53 - 1) becomes its exact decimal string;
      * a tuple becomes an array.
    Rejected with ``CanonicalizationError`` naming the path: NaN and infinities,
    non-string object keys, and any other type (bytes, Decimal, set, ...).

    Returns the normalized value (the same object when nothing changed) and
    whether its canonical form needs the reference serializer (it holds a
    float or a non-ASCII object key).
    """
    if value is None or value is True or value is False or isinstance(value, str):
        return value, False
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value, False
        return str(value), False
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise CanonicalizationError(f"{value!r} has no JSON form", where=path)
        return value, True
    if isinstance(value, dict):
        return _normalize_object(value, path)
    if isinstance(value, list | tuple):
        return _normalize_array(value, path)
    if isinstance(value, datetime):
        return _datetime_text(value, path), False
    if isinstance(value, date):
        return value.isoformat(), False
    raise CanonicalizationError(
        f"a {type(value).__name__} has no canonical JSON form", where=path
    )


def _normalize_object(value: Mapping[Any, Any], path: str) -> tuple[JSONValue, bool]:
    needs_reference = False
    changed: dict[str, Any] | None = None
    for key, item in value.items():
        if not isinstance(key, str):
            raise CanonicalizationError(f"object key {key!r} is not a string", where=path)
        if not key.isascii():
            needs_reference = True
        new, ref = normalize(item, f"{path}.{key}")
        needs_reference = needs_reference or ref
        if new is not item:
            if changed is None:
                changed = dict(value)
            changed[key] = new
    return (value if changed is None else changed), needs_reference


def _normalize_array(value: list[Any] | tuple[Any, ...], path: str) -> tuple[JSONValue, bool]:
    needs_reference = False
    changed: list[Any] | None = None if isinstance(value, list) else list(value)
    for index, item in enumerate(value):
        new, ref = normalize(item, f"{path}[{index}]")
        needs_reference = needs_reference or ref
        if new is not item:
            if changed is None:
                changed = list(value)
            changed[index] = new
    return (value if changed is None else changed), needs_reference


def _datetime_text(value: datetime, path: str) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise CanonicalizationError("a naive datetime has no defined instant", where=path)
    utc = (value - offset).replace(tzinfo=None)
    text = utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds")
    return text + "Z"


def canonicalize(value: JSONValue) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value`` (after ``normalize``)."""
    normalized, needs_reference = normalize(value)
    if not needs_reference:
        try:
            return orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass  # e.g. a lone surrogate: let the reference decide
    return reference_canonicalize(normalized)


def reference_canonicalize(value: JSONValue) -> bytes:
    """The reference implementation, for values already normalized."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeError, ValueError, TypeError) as exc:
        raise CanonicalizationError(f"cannot canonicalize: {exc}") from exc


def is_canonical(line: bytes) -> bool:
    """True when ``line`` parses as JSON and is already in canonical form."""
    try:
        return canonicalize(orjson.loads(line)) == line
    except (orjson.JSONDecodeError, CanonicalizationError):
        return False


def utc_text(moment: datetime) -> str:
    """The canonical text of an aware instant (used for every time we write)."""
    return _datetime_text(moment, "$")


def duration_text(delta: timedelta) -> str:
    """Seconds as a plain number string, for envelopes."""
    return f"{delta.total_seconds():.3f}"
