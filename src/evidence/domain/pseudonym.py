"""Keyed pseudonyms for personal data before it enters immutable storage.

User principal names, e-mail addresses and display names of people are
replaced by ``pseud:<HMAC-SHA256 prefix>``. The same identity under the same
key always gives the same pseudonym, so evidence stays comparable across runs;
the lookup from pseudonym back to identity lives in the database, where an
erasure request can delete it. Object ids (GUIDs) are not personal data here
and stay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

PREFIX = "pseud:"
# A mailbox or UPN: local@domain.tld. Deliberately broad; a false positive costs
# only a pseudonym, a false negative puts personal data beyond erasure. The last
# label must be letters (every TLD is), so package ids such as ``debug@3.0.1``
# in scanner output are not taken for addresses.
EMAIL = re.compile(
    r"[A-Za-z0-9._%+'#-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

# The same test over canonical JSON bytes: can a record hold an address at all?
# Sound as a filter, because canonical JSON never escapes the characters an
# address is made of, so any address in any string of the record also stands
# verbatim in its bytes (``@odata.nextLink`` keys do not match, so Azure
# payloads are not walked for nothing). It looks only at each "@" and what
# surrounds it: a regex search over the whole line would retry every start
# inside long identifiers.
_LOCAL_PART_BYTES = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+'#-"
)
_AT_DOMAIN = re.compile(rb"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")


def may_hold_address(canonical: bytes) -> bool:
    at = canonical.find(b"@")
    while at != -1:
        if at and canonical[at - 1] in _LOCAL_PART_BYTES and _AT_DOMAIN.match(canonical, at):
            return True
        at = canonical.find(b"@", at + 1)
    return False


class Pseudonymizer:
    """``pseudonym(identity)``; ``seen`` collects new pairs for the database lookup."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key
        self.seen: dict[str, str] = {}

    def pseudonym(self, identity: str) -> str:
        if identity.startswith(PREFIX):
            return identity
        normalized = identity.strip().lower()
        mac = hmac.new(self._key, normalized.encode("utf-8"), hashlib.sha256).hexdigest()
        value = PREFIX + mac[:24]
        self.seen.setdefault(value, identity)
        return value

    def scrub_text(self, text: str) -> str:
        """Replace every e-mail address or UPN inside ``text``."""
        if "@" not in text:
            return text
        return EMAIL.sub(lambda m: self.pseudonym(m.group(0)), text)

    def scrub(self, value: Any, personal_keys: frozenset[str] = frozenset()) -> Any:
        """Walk a JSON value: pseudonymize the values of ``personal_keys`` entirely,
        and every e-mail address or UPN found in any other string."""
        return _walk(value, self.scrub_text, self.pseudonym, personal_keys)


def _walk(
    value: Any,
    text: Callable[[str], str],
    whole: Callable[[str], str],
    personal: frozenset[str],
) -> Any:
    if isinstance(value, str):
        return text(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in personal and isinstance(item, str) and item:
                out[key] = whole(item)
            else:
                out[key] = _walk(item, text, whole, personal)
        return out
    if isinstance(value, list):
        return [_walk(item, text, whole, personal) for item in value]
    return value
