"""How long a fact has been true: first-seen dates from observation history.

Observations are kept as changes: a finding re-reported by a newer scan closes
its old row and opens a new one at the same instant (``valid_to`` of one ==
``valid_from`` of the next). A finding's first-seen date is the ``valid_from``
where its current unbroken chain of rows begins; a finding that went away and
came back starts a new chain. ``list_open_findings`` answers "critical
vulnerabilities open longer than N days" with one query and a walk in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from evidence.db import tables as t


@dataclass(frozen=True)
class OpenFact:
    source: str
    kind: str
    subject: str
    first_seen: datetime
    attributes: dict[str, Any]


def list_open_findings(
    conn: Connection,
    *,
    kind: str,
    source: str | None = None,
    as_of: datetime | None = None,
) -> list[OpenFact]:
    """Every fact of ``kind`` valid at ``as_of`` (default: now, i.e. still open),
    with the start of its unbroken history."""
    obs = t.observations
    query = sa.select(
        obs.c.source, obs.c.subject, obs.c.valid_from, obs.c.valid_to, obs.c.attributes
    ).where(obs.c.kind == kind)
    if source is not None:
        query = query.where(obs.c.source == source)
    if as_of is not None:
        query = query.where(obs.c.valid_from <= as_of)
    query = query.order_by(obs.c.source, obs.c.subject, obs.c.valid_from, obs.c.id)
    found: list[OpenFact] = []
    key: tuple[str, str] | None = None
    start: datetime | None = None
    previous_end: datetime | None = None
    for row in conn.execute(query):
        if (row.source, row.subject) != key or previous_end != row.valid_from:
            start = row.valid_from
        key = (row.source, row.subject)
        previous_end = row.valid_to
        valid = row.valid_to is None or (as_of is not None and row.valid_to > as_of)
        if valid and start is not None:
            found.append(OpenFact(row.source, kind, row.subject, start, dict(row.attributes)))
    return found


def get_first_seen(
    conn: Connection, *, source: str, kind: str, subject: str, as_of: datetime | None = None
) -> datetime | None:
    """When the fact's current unbroken history began; None when it is not valid."""
    for fact in list_open_findings(conn, kind=kind, source=source, as_of=as_of):
        if fact.subject == subject:
            return fact.first_seen
    return None
