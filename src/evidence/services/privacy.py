"""Personal data: the pseudonym lookup, erasure, and showing names where still allowed.

Evidence in the store only ever holds pseudonyms (``pseud:<hmac>``) for user
principal names, e-mail addresses and display names of people. The lookup
from pseudonym to identity is the ``pseudonyms`` table, and only there:

* ``forget(rt, identity)`` deletes the lookup rows of an identity (or of a
  pseudonym) on an erasure request. Stored evidence is not touched, so it
  still verifies; it just cannot be linked to the person any more.
* ``lookup(conn, values)`` and ``reveal(value, names)`` are what reports and
  status views use to show names where the lookup still has them, and the
  pseudonym otherwise.

If the same person shows up again in a later collection (still in the system
of record), the lookup row is recorded again, as for anyone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from evidence.db import tables as t
from evidence.domain.pseudonym import PREFIX, Pseudonymizer
from evidence.errors import UsageError
from evidence.services.runtime import Runtime


@dataclass(frozen=True)
class Forgotten:
    requested: str
    pseudonyms: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"forgotten": len(self.pseudonyms), "pseudonyms": self.pseudonyms}


def forget(rt: Runtime, identity: str) -> Forgotten:
    """Delete the lookup rows for ``identity`` (a UPN, address or name, any case) or for
    one pseudonym. Idempotent: nothing to delete is not an error."""
    value = identity.strip()
    if not value:
        raise UsageError("name the identity (or pseudonym) to forget")
    table = t.pseudonyms
    if value.startswith(PREFIX):
        condition = table.c.pseudonym == value
    else:
        keyed = Pseudonymizer(rt.pseudonym_key).pseudonym(value)
        condition = sa.or_(
            table.c.pseudonym == keyed, sa.func.lower(table.c.identity) == value.lower()
        )
    with rt.engine.begin() as conn:
        found = sorted(
            row[0] for row in conn.execute(sa.select(table.c.pseudonym).where(condition))
        )
        if found:
            conn.execute(table.delete().where(table.c.pseudonym.in_(found)))
    return Forgotten(value, found)


def lookup(conn: Connection, values: Iterable[str]) -> dict[str, str]:
    """Identity for each pseudonym the lookup still has; others are simply absent."""
    wanted = sorted({v for v in values if isinstance(v, str) and v.startswith(PREFIX)})
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            sa.select(t.pseudonyms.c.pseudonym, t.pseudonyms.c.identity).where(
                t.pseudonyms.c.pseudonym.in_(chunk)
            )
        )
        found.update({row[0]: row[1] for row in rows})
    return found


def pseudonyms_in(value: Any) -> set[str]:
    """Every pseudonym inside a JSON value (to look them up in one go)."""
    if isinstance(value, str):
        return {value} if value.startswith(PREFIX) else set()
    if isinstance(value, dict):
        return set().union(*(pseudonyms_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(pseudonyms_in(v) for v in value)) if value else set()
    return set()


def reveal(value: Any, names: dict[str, str]) -> Any:
    """``value`` with each pseudonym replaced by its identity where ``names`` has it."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {k: reveal(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, names) for v in value]
    return value


def reveal_with_lookup(conn: Connection, value: Any) -> Any:
    """``reveal`` with the names the lookup has for the pseudonyms in ``value``."""
    return reveal(value, lookup(conn, pseudonyms_in(value)))
