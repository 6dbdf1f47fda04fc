"""The collect hot path's shortcuts give exactly the bytes of the plain definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.domain.canonical import canonicalize
from evidence.domain.observation import Observation, fingerprint_text
from evidence.errors import CanonicalizationError
from evidence.services.collect import _canonical_record

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
KEY = st.one_of(TEXT, st.sampled_from(["data", "file", "\ue000", "\U0001f600", "é", ""]))
VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
    ),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(KEY, c, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEY, VALUE, max_size=10))
def test_memberwise_record_bytes_equal_canonicalize(record: dict[str, Any]) -> None:
    line, members = _canonical_record(record)
    assert line == canonicalize(record)
    for value, text, offset in members.values():
        assert text == canonicalize(value)
        assert line[offset : offset + len(text)] == text  # where the spool points


@settings(max_examples=200, deadline=None)
@given(VALUE)
def test_any_value_as_a_record(value: Any) -> None:
    assert _canonical_record(value)[0] == canonicalize(value)


def test_memberwise_order_is_utf16_order() -> None:
    record = {"\ue000": 1, "\U0001f600": {"a": 2}, "b": [1.5]}
    line, members = _canonical_record(record)
    assert line == rfc8785.dumps(record)
    assert sorted(text for _, text, _ in members.values()) == sorted([b'{"a":2}', line])


def test_memberwise_errors_name_the_path() -> None:
    with pytest.raises(CanonicalizationError) as info:
        _canonical_record({"file": "x", "data": {"when": datetime(2026, 1, 1)}})
    assert info.value.where == "$.data.when"
    with pytest.raises(CanonicalizationError):
        _canonical_record({1: "x"})


@pytest.mark.parametrize(
    "observed",
    [
        None,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_fingerprint_from_parts_equals_the_definition(observed: datetime | None) -> None:
    attributes = {"b": 1, "a": ["x", 2.5], "é": None}
    obs = Observation("k", "s", attributes, observed, "scope é")
    observed_text = observed.isoformat() if observed else None
    definition = canonicalize({"a": attributes, "o": observed_text, "s": "scope é"})
    assert fingerprint_text(canonicalize(attributes), observed, "scope é") == definition
    assert obs.fingerprint().raw == __import__("hashlib").sha256(definition).digest()
