"""The byte-level pre-filter never lets an address through that the walk would catch."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from evidence.domain.canonical import canonicalize
from evidence.domain.pseudonym import Pseudonymizer, may_hold_address

KEY = b"k" * 32
ADDRESS_CHARS = st.sampled_from(list("ab.-_+@'#\\\"\n\t xyz.com0123é"))
texts = st.text(ADDRESS_CHARS, max_size=30)
records = st.recursive(
    texts | st.integers() | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@given(records)
def test_filter_is_sound(record):
    line = canonicalize(record)
    if not may_hold_address(line):
        assert Pseudonymizer(KEY).scrub(record) == record


def test_odata_keys_are_not_addresses():
    line = canonicalize({"@odata.nextLink": "https://x/y", "value": []})
    assert not may_hold_address(line)
    assert may_hold_address(canonicalize({"createdBy": "alice@contoso.com"}))
