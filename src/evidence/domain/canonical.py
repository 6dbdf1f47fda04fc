"""RFC 8785 canonical JSON (JCS), byte-identical to the reference ``rfc8785``.

``canonicalize(value)`` is the one way a record, envelope, ledger entry or
checkpoint becomes bytes. Values are first checked and normalized by one
documented rule (see ``normalize``); anything else is rejected with the path of
the offending value, never silently changed.

Speed: the reference package is pure Python (about 19,000 records/s). The fast
route walks the value once without building paths and lets orjson write it with
sorted keys. For the values the walk lets through (exact str, int, bool, None,
list, dict; anything else sends the value down the exact route) orjson's output
is JCS's:
  * strings: the same escapes (``\\b \\t \\n \\f \\r \\" \\\\``, ``\\u00xx`` for other
    control characters, everything else as UTF-8; lone surrogates are errors);
  * integers: orjson refuses those beyond +-(2**53 - 1) (``OPT_STRICT_INTEGER``),
    and the exact route applies the normalization rule to them;
  * floats: JCS writes the shortest round-trip digits in ECMAScript layout.
    orjson writes the same digits, and for non-integral values from 1e-5 up the
    same layout; every other float is handed to orjson as a ``Fragment`` of
    ``number_text`` (Python's ``repr`` digits, the very digits the reference
    uses, laid out as ECMAScript does);
  * key order: JCS sorts by UTF-16 code units, orjson by code points. They
    differ only between a character in U+E000..U+FFFF and one beyond U+FFFF, so
    output holding both kinds goes through the exact route instead.
The walk has a native twin (``_jcsprep``, C, built with the package when a
compiler is there) that returns the very same value; the Python walk runs
where it was not built or $EVIDENCE_PURE_PYTHON is set.
The exact route is ``normalize`` (which names the path of what it rejects) then
the reference. ``tests/domain/test_canonical.py`` holds both routes to the
published test vectors and to the reference on generated values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import rfc8785

from evidence.errors import CanonicalizationError

MAX_SAFE_INTEGER = 2**53 - 1

JSONValue = Any  # a tree of dict[str, ...], list, str, int, float, bool, None

# Non-integral floats in this range are written by orjson exactly as ECMAScript
# writes them (positional notation, shortest round-trip digits); below it orjson
# switches to exponents earlier than ECMAScript, and whole numbers get ".0".
ORJSON_FLOATS_FROM = 1e-5
ORJSON_FLOATS_TO = 2.0**53  # every float from here on is a whole number anyway
# Strict integers: beyond +-(2**53 - 1) orjson raises and the exact route
# applies the normalization rule.
_FAST_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _order_hazard(out: bytes) -> bool:
    """True when orjson's code-point key order might differ from JCS's UTF-16 order:
    the text holds both a character of U+E000..U+FFFF (UTF-8 lead byte EE or EF)
    and one beyond U+FFFF (F0 to F4). Written out, not as ``any()`` over the lead
    bytes: it runs on every non-ASCII record, and generators cost more than the
    searches."""
    return (b"\xee" in out or b"\xef" in out) and (
        b"\xf0" in out or b"\xf1" in out or b"\xf2" in out or b"\xf3" in out or b"\xf4" in out
    )


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
    whether it holds a float or a non-ASCII object key (kept for callers that
    want to know; ``canonicalize`` no longer needs it).
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


def number_text(value: float) -> str:
    """The ECMAScript (ES2015+) text of a finite float, as RFC 8785 3.2.2.3 requires.

    Python's ``repr`` gives the shortest digits that round-trip, as ECMAScript
    does; only the layout differs: ECMAScript writes plain decimals from 1e-6
    up to (not including) 1e21, no ``.0`` on whole numbers, and exponents
    without leading zeros.
    """
    if value != value or value - value != 0:  # NaN, or an infinity
        raise CanonicalizationError(f"{value!r} has no JSON form")
    if value == 0:
        return "0"  # -0.0 included
    text = repr(value)
    if "e" not in text:
        # repr is positional from 1e-4 to 1e16: the same as ECMAScript but for ".0".
        return text[:-2] if text.endswith(".0") else text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).rstrip("0")
    # value = 0.<digits> * 10**point (repr's mantissa has one digit before the point)
    point = int(exponent) + 1
    count = len(digits)
    if count <= point <= 21:
        body = digits + "0" * (point - count)
    elif 0 < point <= 21:
        body = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        power = point - 1
        head = digits[0] + ("." + digits[1:] if count > 1 else "")
        body = f"{head}e{'+' if power > 0 else '-'}{abs(power)}"
    return sign + body


class _Slow(Exception):
    """The fast walk met something only the exact route handles."""


def _float(value: float) -> Any:
    """A float as orjson should write it: as is where orjson's text is JCS's, a whole
    number below 2**53 as that integer (its JCS text has no ".0"), else a Fragment."""
    if abs(value) < ORJSON_FLOATS_TO and value.is_integer():
        return int(value)
    if ORJSON_FLOATS_FROM <= abs(value) < ORJSON_FLOATS_TO:
        return value
    try:
        return orjson.Fragment(number_text(value))
    except CanonicalizationError:
        raise _Slow from None


# The two walks below visit every value of every record: the commonest types are
# tested first, and a float orjson writes as JCS does is let through without a call.


def _fast_object(value: dict[Any, Any]) -> dict[Any, Any]:
    changed: dict[Any, Any] | None = None
    new: Any
    for key, item in value.items():
        kind = type(item)
        if kind is str or kind is int:
            continue  # orjson rejects integers beyond 2**53 - 1 (OPT_STRICT_INTEGER)
        if kind is float:
            if ORJSON_FLOATS_FROM <= abs(item) < ORJSON_FLOATS_TO and not item.is_integer():
                continue
            new = _float(item)
        elif kind is dict:
            new = _fast_object(item)
        elif kind is list:
            new = _fast_array(item)
        elif kind is bool or item is None:
            continue
        else:
            raise _Slow
        if new is not item:
            if changed is None:
                changed = value.copy()
            changed[key] = new
    return value if changed is None else changed


def _fast_array(value: list[Any]) -> list[Any]:
    changed: list[Any] | None = None
    new: Any
    for index, item in enumerate(value):
        kind = type(item)
        if kind is str or kind is int:
            continue
        if kind is float:
            if ORJSON_FLOATS_FROM <= abs(item) < ORJSON_FLOATS_TO and not item.is_integer():
                continue
            new = _float(item)
        elif kind is dict:
            new = _fast_object(item)
        elif kind is list:
            new = _fast_array(item)
        elif kind is bool or item is None:
            continue
        else:
            raise _Slow
        if new is not item:
            if changed is None:
                changed = value.copy()
            changed[index] = new
    return value if changed is None else changed


def _fast(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return _fast_object(value)
    if kind is list:
        return _fast_array(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _float(value)
    raise _Slow


def _unsupported(value: Any) -> Any:
    raise _Slow


def _python_prepare(
    value: Any, _on_float: Callable[[float], Any], _on_other: Callable[[Any], Any]
) -> Any:
    return _fast(value)


def _prepare_function() -> Callable[[Any, Callable[[float], Any], Callable[[Any], Any]], Any]:
    """The native walk when it was built, unless $EVIDENCE_PURE_PYTHON asks for Python."""
    if os.environ.get("EVIDENCE_PURE_PYTHON"):
        return _python_prepare
    try:
        from evidence.domain._jcsprep import prepare
    except ImportError:
        return _python_prepare
    return prepare


_prepare = _prepare_function()
NATIVE = _prepare is not _python_prepare


def canonicalize(value: JSONValue) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value`` (after ``normalize``)."""
    try:
        out = orjson.dumps(_prepare(value, _float, _unsupported), option=_FAST_OPTIONS)
    except (_Slow, TypeError, orjson.JSONEncodeError):
        return exact_canonicalize(value)
    if not out.isascii() and _order_hazard(out):
        return exact_canonicalize(value)
    return out


def exact_canonicalize(value: JSONValue) -> bytes:
    """The slow, exact route: ``normalize`` (errors name a path), then the reference."""
    return reference_canonicalize(normalize(value)[0])


def reference_canonicalize(value: JSONValue) -> bytes:
    """The reference implementation, for values already normalized."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, UnicodeError, ValueError, TypeError) as exc:
        raise CanonicalizationError(f"cannot canonicalize: {exc}") from exc


def is_canonical(line: bytes) -> bool:
    """True when ``line`` parses as JSON and is already in canonical form."""
    try:
        value = orjson.loads(line)
        if canonicalize(value) == line:
            return True
        # JSON numbers are doubles: a whole number beyond 2**53 - 1 in the text can
        # only be a float's canonical form (our rule writes such integers as strings).
        return canonicalize(_doubles(value)) == line
    except (orjson.JSONDecodeError, CanonicalizationError, OverflowError):
        return False


def _doubles(value: Any) -> Any:
    if type(value) is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return float(value)
    if type(value) is list:
        return [_doubles(item) for item in value]
    if type(value) is dict:
        return {key: _doubles(item) for key, item in value.items()}
    return value


def utc_text(moment: datetime) -> str:
    """The canonical text of an aware instant (used for every time we write)."""
    return _datetime_text(moment, "$")


def duration_text(delta: timedelta) -> str:
    """Seconds as a plain number string, for envelopes."""
    return f"{delta.total_seconds():.3f}"
