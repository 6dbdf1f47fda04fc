"""Exceptions (risk acceptances): add, list, revoke. Stored with who and when, never deleted.

An exception names a check, a subject pattern (shell-style: ``*`` and ``?``), why, who owns
the risk, who approved it, the ticket, and when it starts and expires. While it is in force
(start <= T < expiry, recorded by T, not revoked by T) a failing subject it covers is
``excepted`` instead of failing. Revoking keeps the row and stamps who and when.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from evidence.assessment.library import Library
from evidence.db import tables as t
from evidence.errors import UsageError
from evidence.services.runtime import Runtime

MAX_TERM = timedelta(days=366 * 3)  # an acceptance longer than this is a policy, not an exception


@dataclass(frozen=True)
class NewException:
    check_id: str
    subject_pattern: str
    reason: str
    owner: str
    approver: str
    ticket: str
    starts_at: datetime
    expires_at: datetime


def add_exception(
    rt: Runtime,
    library: Library,
    new: NewException,
    *,
    created_by: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate and store ``new``; return it as stored."""
    moment = now or datetime.now(UTC)
    if new.check_id not in library.checks:
        known = ", ".join(sorted(library.checks))
        raise UsageError(f"no check named {new.check_id!r}", remedy=f"known checks: {known}")
    for name in ("subject_pattern", "reason", "owner", "approver", "ticket"):
        if not str(getattr(new, name)).strip():
            raise UsageError(f"exception {name.replace('_', ' ')} must not be empty")
    if not created_by.strip():
        raise UsageError("who records the exception must be known (pass --by)")
    for name in ("starts_at", "expires_at"):
        if getattr(new, name).utcoffset() is None:
            raise UsageError(f"exception {name} needs a zone")
    if new.expires_at <= new.starts_at:
        raise UsageError("the exception expires before it starts")
    if new.expires_at - new.starts_at > MAX_TERM:
        raise UsageError("an exception may last at most 3 years; renew it instead")
    row = {
        "id": uuid.uuid4().hex,
        "check_id": new.check_id,
        "subject_pattern": new.subject_pattern.strip(),
        "reason": new.reason.strip(),
        "owner": new.owner.strip(),
        "approver": new.approver.strip(),
        "ticket": new.ticket.strip(),
        "starts_at": new.starts_at.astimezone(UTC),
        "expires_at": new.expires_at.astimezone(UTC),
        "created_at": moment,
        "created_by": created_by.strip(),
        "revoked_at": None,
        "revoked_by": None,
        "revoke_reason": None,
    }
    with rt.engine.begin() as conn:
        conn.execute(t.exceptions.insert().values(**row))
    return _json(row, moment)


def list_exceptions(
    rt: Runtime,
    *,
    check_id: str | None = None,
    active_only: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    moment = now or datetime.now(UTC)
    ex = t.exceptions
    query = sa.select(ex).order_by(ex.c.created_at, ex.c.id)
    if check_id:
        query = query.where(ex.c.check_id == check_id)
    with rt.engine.connect() as conn:
        rows = [_json(dict(r._mapping), moment) for r in conn.execute(query)]
    return [r for r in rows if r["state"] == "active"] if active_only else rows


def revoke_exception(
    rt: Runtime, exception_id: str, *, revoked_by: str, reason: str, now: datetime | None = None
) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    if not reason.strip() or not revoked_by.strip():
        raise UsageError("revoking needs a reason and who revokes (--reason, --by)")
    ex = t.exceptions
    with rt.engine.begin() as conn:
        row = conn.execute(sa.select(ex).where(ex.c.id == exception_id)).first()
        if row is None:
            raise UsageError(f"no exception with id {exception_id!r}")
        if row.revoked_at is not None:
            raise UsageError(f"exception {exception_id} was already revoked at {row.revoked_at}")
        conn.execute(
            ex.update()
            .where(ex.c.id == exception_id)
            .values(revoked_at=moment, revoked_by=revoked_by.strip(), revoke_reason=reason.strip())
        )
        stored = dict(conn.execute(sa.select(ex).where(ex.c.id == exception_id)).one()._mapping)
    return _json(stored, moment)


def _json(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    def text(value: Any) -> Any:
        return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value

    if row["revoked_at"] is not None and row["revoked_at"] <= now:
        state = "revoked"
    elif now >= row["expires_at"]:
        state = "expired"
    elif now < row["starts_at"]:
        state = "pending"
    else:
        state = "active"
    return {**{k: text(v) for k, v in row.items()}, "state": state}
