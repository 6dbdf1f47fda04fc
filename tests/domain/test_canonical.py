"""RFC 8785 canonical JSON: published vectors, the reference package, and the normalization rule.

``canonicalize`` has a fast route (orjson plus ECMAScript number text) and an
exact route (``normalize`` then the reference ``rfc8785``). These tests hold
both to the published test data and to the reference on generated values.
"""

from __future__ import annotations

import json
import random
import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.domain import canonical
from evidence.domain.canonical import (
    MAX_SAFE_INTEGER,
    canonicalize,
    exact_canonicalize,
    is_canonical,
    normalize,
    number_text,
    utc_text,
)
from evidence.errors import CanonicalizationError
from realparts import need

JCS = Path(__file__).parent.parent / "fixtures" / "jcs"
VECTORS = sorted(p.stem for p in (JCS / "input").glob("*.json"))

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
NUMBER_VECTORS = [
    (0x0000000000000000, "0"),
    (0x8000000000000000, "0"),
    (0x0000000000000001, "5e-324"),
    (0x8000000000000001, "-5e-324"),
    (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
    (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
    (0x4340000000000000, "9007199254740992"),
    (0xC340000000000000, "-9007199254740992"),
    (0x4430000000000000, "295147905179352830000"),
    (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
    (0x44B52D02C7E14AF6, "1e+23"),
    (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
    (0x444B1AE4D6E2EF4E, "999999999999999700000"),
    (0x444B1AE4D6E2EF4F, "999999999999999900000"),
    (0x444B1AE4D6E2EF50, "1e+21"),
    (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
    (0x3EB0C6F7A0B5ED8D, "0.000001"),
    (0x41B3DE4355555553, "333333333.3333332"),
    (0x41B3DE4355555554, "333333333.33333325"),
    (0x41B3DE4355555555, "333333333.3333333"),
    (0x41B3DE4355555556, "333333333.3333334"),
    (0x41B3DE4355555557, "333333333.33333343"),
    (0xBECBF647612F3696, "-0.0000033333333333333333"),
    (0x43143FF3C1CB0959, "1424953923781206.2"),
]
NON_FINITE = [0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000]


def _double(bits: int) -> float:
    return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])


# ---- published vectors ------------------------------------------------------------


@pytest.mark.parametrize("name", VECTORS)
def test_reference_test_data(name: str) -> None:
    value = json.loads((JCS / "input" / f"{name}.json").read_text(encoding="utf-8"))
    expected = (JCS / "output" / f"{name}.json").read_bytes()
    assert canonicalize(value) == expected
    assert exact_canonicalize(value) == expected
    assert rfc8785.dumps(value) == expected


def test_all_vectors_are_present() -> None:
    assert {"weird", "values", "structures", "unicode", "french", "simpleString"} <= set(VECTORS)


@pytest.mark.parametrize(("bits", "text"), NUMBER_VECTORS)
def test_rfc_appendix_b_numbers(bits: int, text: str) -> None:
    value = _double(bits)
    assert number_text(value) == text
    assert canonicalize(value) == text.encode()
    assert canonicalize([value]) == f"[{text}]".encode()
    assert canonicalize({"n": value}) == f'{{"n":{text}}}'.encode()
    assert rfc8785.dumps(value) == text.encode()


@pytest.mark.parametrize("bits", NON_FINITE)
def test_rfc_appendix_b_non_finite_numbers_are_rejected(bits: int) -> None:
    value = _double(bits)
    with pytest.raises(CanonicalizationError):
        canonicalize(value)
    with pytest.raises(CanonicalizationError):
        number_text(value)


def test_rfc_sorting_example_orders_by_utf16_code_units() -> None:
    # U+E000 sorts after the astral U+1F600 in UTF-16 (a surrogate pair starts 0xD83D),
    # but before it by code point: orjson alone would get this wrong.
    value = {"\ue000": 1, "\U0001f600": 2, "a": {"\uffff": 3, "\U00010000": 4}}
    assert canonicalize(value) == rfc8785.dumps(value)
    assert '"\U0001f600":2,"\ue000":1}'.encode() in canonicalize(value)


# ---- numbers against the reference, exhaustively sampled --------------------------


def test_number_text_matches_reference_on_random_bit_patterns() -> None:
    rng = random.Random(8785)
    checked = 0
    for _ in range(10_000):
        value = _double(rng.getrandbits(64))
        if value != value or value in (float("inf"), float("-inf")):
            continue
        assert canonicalize(value) == rfc8785.dumps(value), repr(value)
        checked += 1
    assert checked > 9_500


def test_floats_around_the_notation_thresholds_match_reference() -> None:
    values = []
    for exponent in range(-12, 25):
        base = 10.0**exponent
        for factor in (1.0, 1.5, 9.999999999999998, 0.5, 2.0 / 3.0):
            values.append(base * factor)
            values.append(-base * factor)
    values += [2.0**52 + 0.5, 2.0**53, 2.0**53 + 2, 1e-5, 9.9e-6, 1e-6, 1e16, 1e21]
    for value in values:
        assert canonicalize(value) == rfc8785.dumps(value), repr(value)
        assert canonicalize({"v": [value]}) == rfc8785.dumps({"v": [value]}), repr(value)


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_matches_reference(value: float) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)
    assert canonicalize([value, {"x": value}]) == rfc8785.dumps([value, {"x": value}])


# ---- generated records against the reference -------------------------------------

# Any code point but lone surrogates (which JSON text cannot carry): control
# characters, U+E000..U+FFFF and astral characters included.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
KEY = st.one_of(
    TEXT,
    st.sampled_from(["a", "b", "\ue000", "\uffff", "\U0001f600", "\U00010000", "é", "\x00", ""]),
)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALAR,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(KEY, children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_generated_values_are_byte_identical_to_reference(value: Any) -> None:
    expected = rfc8785.dumps(value)
    assert canonicalize(value) == expected
    assert exact_canonicalize(value) == expected
    assert is_canonical(expected)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEY, JSON, min_size=1, max_size=8))
def test_generated_records_are_byte_identical_to_reference(record: dict[str, Any]) -> None:
    assert canonicalize(record) == rfc8785.dumps(record)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_canonical_output_parses_back_to_the_same_value(value: Any) -> None:
    assert orjson.loads(canonicalize(value)) == orjson.loads(rfc8785.dumps(value))


def test_empty_containers_and_deep_nesting() -> None:
    for value in ({}, [], {"a": {}}, [[]], {"a": [{}, []]}, ""):
        assert canonicalize(value) == rfc8785.dumps(value)
    deep: Any = 1.5
    for level in range(400):  # deeper than orjson's own limit: the exact route takes over
        deep = {"k": deep} if level % 2 else [deep]
    assert canonicalize(deep) == rfc8785.dumps(deep)


def test_lone_surrogates_are_rejected() -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize({"a": "\ud800"})
    with pytest.raises(CanonicalizationError):
        canonicalize({"\udfff": 1})


# ---- the normalization rule ------------------------------------------------------


def test_aware_datetimes_become_utc_text_ending_in_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    value = {
        "utc": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "offset": datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=plus_two),
    }
    assert canonicalize(value) == (
        b'{"offset":"2026-01-02T03:04:05.123456Z","utc":"2026-01-02T03:04:05Z"}'
    )
    assert utc_text(datetime(2026, 1, 2, tzinfo=plus_two)) == "2026-01-01T22:00:00Z"


def test_naive_datetime_is_rejected_with_its_path() -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize({"a": [1, {"when": datetime(2026, 1, 1)}]})
    assert info.value.where == "$.a[1].when"
    assert "naive" in info.value.message


def test_dates_and_tuples() -> None:
    assert canonicalize({"d": date(2026, 3, 4), "t": (1, "x")}) == b'{"d":"2026-03-04","t":[1,"x"]}'


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (MAX_SAFE_INTEGER, b"9007199254740991"),
        (-MAX_SAFE_INTEGER, b"-9007199254740991"),
        (MAX_SAFE_INTEGER + 1, b'"9007199254740992"'),
        (-MAX_SAFE_INTEGER - 1, b'"-9007199254740992"'),
        (2**64 + 1, b'"18446744073709551617"'),
        (-(10**40), b'"-' + b"1" + b"0" * 40 + b'"'),
    ],
)
def test_integers_beyond_two_to_the_53_become_exact_decimal_strings(
    number: int, text: bytes
) -> None:
    assert canonicalize(number) == text
    assert canonicalize({"n": [number]}) == b'{"n":[' + text + b"]}"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinities_are_rejected_with_their_path(bad: float) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize({"a": [0, bad]})
    assert info.value.where == "$.a[1]"


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [(b"raw", "bytes"), ({1, 2}, "set"), (Decimal("1.5"), "Decimal"), (object(), "object")],
)
def test_other_types_are_rejected_with_their_path(bad: Any, type_name: str) -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize({"outer": {"inner": bad}})
    assert info.value.where == "$.outer.inner"
    assert type_name in info.value.message


def test_non_string_keys_are_rejected() -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonicalize({"a": {1: "x"}})
    assert info.value.where == "$.a"


def test_normalization_never_changes_the_callers_value() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    value = {"big": 2**60, "when": when, "f": 1.0, "nested": [2**60, 0.5, 1e-7]}
    snapshot = repr(value)
    canonicalize(value)
    normalize(value)
    assert repr(value) == snapshot
    assert value["when"] is when


def test_subclasses_of_plain_types_are_written_as_their_base() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    value = {"n": Name("x"), "c": Count(3), "l": [Count(2**60)]}
    assert canonicalize(value) == b'{"c":3,"l":["1152921504606846976"],"n":"x"}'


def test_is_canonical() -> None:
    assert is_canonical(b'{"a":1,"b":[true,null]}')
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 1}')
    assert not is_canonical(b'{"a":1.0}')
    assert not is_canonical(b"not json")
    # a float's canonical text may look like an integer beyond 2**53 (RFC 8785 Appendix B)
    assert is_canonical(b"[9007199254740992,295147905179352830000]")
    assert not is_canonical(b"9007199254740993")  # no double has this value


# ---- the native walk and its Python twin ---------------------------------------------
def _native_prepare() -> Any:
    try:
        from evidence.domain._jcsprep import prepare
    except ImportError:
        need("evidence.domain._jcsprep was not built (no C compiler)")
    return prepare


class _Str(str):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


ODD = st.sampled_from(
    [(1, 2), Decimal("1.5"), _Str("x"), _Dict(a=1), datetime(2026, 1, 1, tzinfo=UTC), b"x"]
)
EVERY_FLOAT = st.one_of(
    st.floats(),  # NaN and infinities included
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-5, 9.99e-6, 2.0**53, 2.0**53 - 1, 1e21, 5e-324]),
)
WALKED = st.recursive(
    st.one_of(SCALAR, EVERY_FLOAT, ODD),
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(KEY, children, max_size=6)
    ),
    max_leaves=30,
)


def _walk_both(value: Any) -> tuple[Any, Any]:
    """What each walk returns for ``value``, or the name of the exception it raised."""
    prepare = _native_prepare()
    results = []
    for walk in (lambda v: prepare(v, canonical._float, canonical._unsupported), canonical._fast):
        try:
            results.append(walk(value))
        except Exception as exc:  # both must fail alike
            results.append(type(exc).__name__)
    return results[0], results[1]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WALKED)
def test_native_walk_returns_what_the_python_walk_returns(value: Any) -> None:
    native, python = _walk_both(value)
    if isinstance(python, str):
        assert native == python  # the same exception
        return
    assert (native is value) == (python is value)  # copied only where something changed
    assert orjson.dumps(native, option=canonical._FAST_OPTIONS) == orjson.dumps(
        python, option=canonical._FAST_OPTIONS
    )


def test_native_walk_copies_only_the_paths_that_change() -> None:
    prepare = _native_prepare()
    plain = {"a": [0.5, "x", {"b": 1}], "c": None}
    assert prepare(plain, canonical._float, canonical._unsupported) is plain
    record = {"keep": {"b": 0.5}, "change": [1.0, "x"]}
    out = prepare(record, canonical._float, canonical._unsupported)
    assert out is not record
    assert out["keep"] is record["keep"]
    assert record["change"][0] == 1.0  # the caller's value is untouched
    assert orjson.dumps(out["change"]) == b"[1,\"x\"]"


def test_native_walk_stops_at_unbounded_depth() -> None:
    prepare = _native_prepare()
    deep: Any = 0.5
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        prepare(deep, canonical._float, canonical._unsupported)
    assert canonicalize([[[1.0]]]) == b"[[[1]]]"
