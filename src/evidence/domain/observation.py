"""Observations: typed, normalized facts derived from records.

A collector's ``observe(record)`` yields these. ``subject`` identifies the
thing the fact is about within its kind (a resource id, a key id, a review
instance id); ``(source, kind, subject)`` is the identity the database keeps
changes against. ``observed_at`` is when the fact held in the system of record;
when we collected it is the run's business, not the observation's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from evidence.domain.canonical import canonicalize
from evidence.domain.digest import Digest


@dataclass(frozen=True, slots=True)
class Observation:
    kind: str
    subject: str
    attributes: dict[str, Any]
    observed_at: datetime | None = None
    scope: str = ""
    record_index: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.observed_at is not None and self.observed_at.utcoffset() is None:
            raise ValueError(f"observation {self.kind}/{self.subject}: observed_at must be aware")

    def fingerprint(self) -> Digest:
        """Hash of what the fact says; unchanged facts hash the same across runs."""
        return self.fingerprint_of(canonicalize(self.attributes))

    def fingerprint_of(self, attributes: bytes) -> Digest:
        """``fingerprint()`` given the canonical bytes of ``attributes`` (computed once).

        It hashes the canonical form of ``{"a": attributes, "o": observed_at, "s": scope}``;
        JCS writes an object as its sorted members in canonical form, and "a" < "o" < "s",
        so that form is assembled here from the parts.
        """
        return Digest.of(fingerprint_text(attributes, self.observed_at, self.scope))


def fingerprint_text(attributes: bytes, observed_at: datetime | None, scope: str) -> bytes:
    """The bytes an observation's fingerprint hashes, from its attributes' canonical bytes."""
    observed = observed_at.isoformat() if observed_at else None
    # One join: ``+`` would copy the attributes (often over a kilobyte) four times.
    return b"".join(
        (b'{"a":', attributes, b',"o":', _canonical_text(observed), b',"s":',
         _canonical_text(scope), b"}")
    )


@functools.lru_cache(maxsize=1024)
def _canonical_text(text: str | None) -> bytes:
    """``canonicalize`` of a scope or time: one run repeats the same few many times."""
    return canonicalize(text)
