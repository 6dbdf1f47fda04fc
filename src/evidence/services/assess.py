"""Assessment as a use case: read observations, runs and exceptions known at T, evaluate every
check, roll up per control, and keep the findings as history.

``assess(rt)`` is what ``evidence assess``, ``evidence collect`` and the daemon call (after
every collection: ``reassess``). ``status`` answers the same question without recording.

"As known then": every input carries its own time line (observations ``valid_from`` /
``valid_to`` are collection times, runs their start, exceptions when they were recorded and
revoked), so evaluating at a past T from the current database gives what was known at T.
Each recorded finding also names the library digest it was judged with, and
``recorded_findings`` answers from what an assessment actually stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from evidence.assessment.evaluate import (
    CheckResult,
    CheckState,
    ExceptionView,
    FrameworkStatus,
    Row,
    RunView,
    SourceHistory,
    control_links,
    roll_up,
)
from evidence.assessment.library import Library, load_library
from evidence.collectors.registry import get_collector
from evidence.config import Settings
from evidence.db import tables as t
from evidence.domain.canonical import canonicalize
from evidence.errors import ConfigError, UsageError
from evidence.services.runtime import Runtime

STREAM_BATCH = 5000


@dataclass
class Assessment:
    as_of: datetime
    library: Library
    results: dict[str, CheckResult]
    frameworks: list[FrameworkStatus]
    recorded: int = 0  # findings rows written (changed controls only)

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        """The status document: ``{"as_of", "frameworks": [{"id", "version", "controls"}]}``."""
        return {
            "as_of": self.as_of.isoformat().replace("+00:00", "Z"),
            "frameworks": [
                {
                    "id": fw.id,
                    "version": fw.version,
                    "controls": [c.to_json(detail) for c in fw.controls],
                }
                for fw in self.frameworks
            ],
        }

    def not_satisfied(self) -> list[str]:
        return [
            f"{fw.id}:{c.id}"
            for fw in self.frameworks
            for c in fw.controls
            if c.status != "satisfied"
        ]


def load_controls(settings: Settings) -> Library:
    """The library the settings name (``[assessment]``), or the one shipped."""
    conf = settings.assessment
    folder = settings.resolve(conf.controls_path) if conf.controls_path else None
    extra = [settings.resolve(p) for p in conf.extra_checks_paths]
    return load_library(folder, extra)


def assess(
    rt: Runtime,
    *,
    as_of: datetime | None = None,
    library: Library | None = None,
    frameworks: Sequence[str] | None = None,
    record: bool = True,
    now: datetime | None = None,
) -> Assessment:
    """Evaluate every check at ``as_of`` (default now) and, with ``record``, store the
    findings of controls whose result changed since the last stored one (stamped ``now``)."""
    library = library or load_controls(rt.settings)
    moment = _aware(as_of or datetime.now(UTC))
    chosen = _frameworks(library, frameworks)
    results = evaluate_checks(rt, library, moment)
    assessment = Assessment(moment, library, results, roll_up(library, results, chosen))
    if record:
        assessment.recorded = _record(rt, assessment, _aware(now or datetime.now(UTC)))
    return assessment


def status(
    rt: Runtime,
    *,
    as_of: datetime | None = None,
    library: Library | None = None,
    frameworks: Sequence[str] | None = None,
) -> Assessment:
    """Control status at ``as_of`` from the history, without recording anything."""
    return assess(rt, as_of=as_of, library=library, frameworks=frameworks, record=False)


def reassess(rt: Runtime, library: Library | None = None) -> Assessment:
    """Re-assess every control now; called after each collection (CLI, demo, daemon)."""
    return assess(rt, library=library)


def daily_status(
    rt: Runtime,
    *,
    framework: str,
    start: date,
    end: date,
    controls: Iterable[str] | None = None,
    library: Library | None = None,
) -> dict[str, list[tuple[date, str]]]:
    """A control's status for every day from ``start`` to ``end`` (inclusive), each judged
    at the end of its day, as known then. For reports over an audit period."""
    if end < start:
        raise UsageError(f"the period ends ({end}) before it starts ({start})")
    library = library or load_controls(rt.settings)
    chosen = _frameworks(library, [framework])
    wanted = set(controls) if controls is not None else None
    needed: set[str] | None = None
    if wanted is not None:
        # judge only the checks that reach these controls: a report on a few controls over a
        # long period need not evaluate every check every day
        links = control_links(library)
        needed = {c for cid in wanted for c, _ in links.get((framework, cid), [])}
    out: dict[str, list[tuple[date, str]]] = {}
    day = start
    while day <= end:
        results = evaluate_checks(rt, library, end_of_day(day), only=needed)
        for control in roll_up(library, results, chosen)[0].controls:
            if wanted is None or control.id in wanted:
                out.setdefault(control.id, []).append((day, control.status))
        day += timedelta(days=1)
    return out


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(
        microseconds=1
    )


def evaluate_checks(
    rt: Runtime, library: Library, as_of: datetime, *, only: set[str] | None = None
) -> dict[str, CheckResult]:
    """Every check of ``library`` (or those named in ``only``) judged at ``as_of`` from
    what the database knew then."""
    by_kind = {
        kind: [c for c in checks if only is None or c.id in only]
        for kind, checks in library.checks_by_kind().items()
    }
    by_kind = {kind: checks for kind, checks in by_kind.items() if checks}
    producers = configured_producers(rt.settings)
    with rt.engine.connect() as conn:
        exceptions = _exceptions_at(conn, as_of)
        histories = _histories(conn, as_of)
        states: dict[str, CheckState] = {}
        kind_scopes: dict[str, dict[str, set[str]]] = {}
        known_scopes: dict[str, set[str]] = {}
        for kind, checks in sorted(by_kind.items()):
            kind_states = [
                CheckState(
                    check,
                    as_of,
                    exceptions.get(check.id, []),
                    program=library.programs.get(check.id),
                )
                for check in checks
            ]
            states.update({s.check.id: s for s in kind_states})
            scopes = kind_scopes.setdefault(kind, {})
            if any(c.needs_history for c in checks):
                _scan_history(conn, kind, as_of, kind_states, scopes, known_scopes)
            else:
                _scan_current(conn, kind, as_of, kind_states, scopes, known_scopes)
        for kind, source in _producers_in_db(conn, as_of):
            producers.setdefault(kind, set()).add(source)
    return {
        check_id: state.finish(
            histories,
            producers.get(state.check.kind, set()),
            kind_scopes.get(state.check.kind, {}),
            known_scopes,
        )
        for check_id, state in states.items()
    }


# ---- reading ------------------------------------------------------------------------
OBSERVATION_COLUMNS = (
    t.observations.c.id,
    t.observations.c.source,
    t.observations.c.subject,
    t.observations.c.scope,
    t.observations.c.observed_at,
    t.observations.c.attributes,
    t.observations.c.valid_from,
    t.observations.c.valid_to,
    t.observations.c.envelope_sha256,
)


def _rows(conn: Connection, statement: sa.Select[Any]) -> Iterator[Row]:
    result = conn.execution_options(yield_per=STREAM_BATCH).execute(statement)
    for r in result:
        attributes = r[5] if isinstance(r[5], dict) else {"value": r[5]}
        yield Row(r[0], r[1], r[2], r[3], r[4], attributes, r[6], r[7], r[8])


def _scan_current(
    conn: Connection,
    kind: str,
    as_of: datetime,
    states: list[CheckState],
    scopes: dict[str, set[str]],
    known: dict[str, set[str]],
) -> None:
    obs = t.observations
    statement = sa.select(*OBSERVATION_COLUMNS).where(
        obs.c.kind == kind,
        obs.c.valid_from <= as_of,
        sa.or_(obs.c.valid_to.is_(None), obs.c.valid_to > as_of),
    )
    for row in _rows(conn, statement):
        scopes.setdefault(row.source, set()).add(row.scope)
        known.setdefault(row.source, set()).add(row.scope)
        for state in states:
            state.feed(row)


def _scan_history(
    conn: Connection,
    kind: str,
    as_of: datetime,
    states: list[CheckState],
    scopes: dict[str, set[str]],
    known: dict[str, set[str]],
) -> None:
    """Rows up to ``as_of`` grouped by (source, subject), oldest first, so SLA rules can
    find where each open finding's unbroken history starts."""
    obs = t.observations
    statement = (
        sa.select(*OBSERVATION_COLUMNS)
        .where(obs.c.kind == kind, obs.c.valid_from <= as_of)
        .order_by(obs.c.source, obs.c.subject, obs.c.valid_from, obs.c.id)
    )
    group: list[Row] = []

    def flush() -> None:
        if not group or not group[-1].valid_at(as_of):
            return
        current = group[-1]
        scopes.setdefault(current.source, set()).add(current.scope)
        known.setdefault(current.source, set()).add(current.scope)
        for state in states:
            if state.check.needs_history:
                state.feed_history(group)
            else:
                state.feed(current)

    for row in _rows(conn, statement):
        if group and (row.source, row.subject) != (group[-1].source, group[-1].subject):
            flush()
            group = []
        group.append(row)
    flush()


def _producers_in_db(conn: Connection, as_of: datetime) -> set[tuple[str, str]]:
    """(kind, source) pairs with any row recorded by ``as_of``: one pass, no JSON decoded."""
    obs = t.observations
    rows = conn.execute(
        sa.select(obs.c.kind, obs.c.source)
        .where(obs.c.valid_from <= as_of)
        .group_by(obs.c.kind, obs.c.source)
    )
    return {(r[0], r[1]) for r in rows}


def configured_producers(settings: Settings) -> dict[str, set[str]]:
    """kind -> names of enabled configured sources whose collector produces it. A source
    that never produced a row still counts: when its runs fail, its kind's checks are errors."""
    out: dict[str, set[str]] = {}
    for source in settings.sources:
        if not source.enabled:
            continue
        override = source.options.get("observation_kind")
        if isinstance(override, str) and override:
            kinds: tuple[str, ...] = (override,)
        else:
            try:
                kinds = get_collector(source.kind).observation_kinds
            except ConfigError:
                continue  # an unknown kind is reported where sources are checked
        for kind in kinds:
            out.setdefault(kind, set()).add(source.name)
    return out


def _histories(conn: Connection, as_of: datetime) -> dict[str, SourceHistory]:
    runs = t.runs
    rows = conn.execute(
        sa.select(
            runs.c.id,
            runs.c.source,
            runs.c.started_at,
            runs.c.status,
            runs.c.scopes,
            runs.c.errors,
            runs.c.envelope_sha256,
        ).where(runs.c.started_at <= as_of, runs.c.status.in_(["complete", "partial", "failed"]))
    )
    grouped: dict[str, list[RunView]] = {}
    for r in rows:
        scopes = r.scopes if isinstance(r.scopes, list) else []
        errors = r.errors if isinstance(r.errors, list) else []
        ok = frozenset(s["scope"] for s in scopes if isinstance(s, dict) and s.get("ok"))
        failed = {s["scope"] for s in scopes if isinstance(s, dict) and not s.get("ok")}
        failed |= {e["scope"] for e in errors if isinstance(e, dict) and e.get("scope")}
        if r.status == "partial" and not failed:
            failed = {""}  # partial without a named scope: assume it touched every scope
        message = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
        grouped.setdefault(r.source, []).append(
            RunView(
                id=r.id,
                source=r.source,
                started_at=r.started_at,
                status=r.status,
                ok_scopes=ok,
                failed_scopes=frozenset(failed),
                envelope=r.envelope_sha256,
                message=message[:500],
            )
        )
    return {source: SourceHistory(views) for source, views in grouped.items()}


def _exceptions_at(conn: Connection, as_of: datetime) -> dict[str, list[ExceptionView]]:
    ex = t.exceptions
    rows = conn.execute(sa.select(ex).where(ex.c.created_at <= as_of).order_by(ex.c.created_at))
    out: dict[str, list[ExceptionView]] = {}
    for r in rows:
        view = ExceptionView(
            id=r.id,
            check_id=r.check_id,
            pattern=r.subject_pattern,
            starts_at=r.starts_at,
            expires_at=r.expires_at,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        if view.active(as_of):
            out.setdefault(view.check_id, []).append(view)
    return out


# ---- findings history ---------------------------------------------------------------
def _record(rt: Runtime, assessment: Assessment, now: datetime) -> int:
    findings = t.findings
    newest = sa.select(sa.func.max(findings.c.id)).group_by(
        findings.c.framework, findings.c.control_id
    )
    written = 0
    with rt.engine.begin() as conn:
        last = {
            (r.framework, r.control_id): r.fingerprint
            for r in conn.execute(
                sa.select(
                    findings.c.framework, findings.c.control_id, findings.c.fingerprint
                ).where(findings.c.id.in_(newest))
            )
        }
        rows = []
        for fw in assessment.frameworks:
            for control in fw.controls:
                detail = control.to_json(detail=True)
                print_ = _judgement(control.status, detail)
                if last.get((fw.id, control.id)) == print_:
                    continue
                rows.append(
                    {
                        "framework": fw.id,
                        "control_id": control.id,
                        "as_of": assessment.as_of,
                        "assessed_at": now,
                        "status": control.status,
                        "detail": detail,
                        "fingerprint": print_,
                        "library_sha256": assessment.library.digest,
                    }
                )
        if rows:
            conn.execute(findings.insert(), rows)
            written = len(rows)
    return written


def _judgement(status: str, detail: dict[str, Any]) -> str:
    """What a finding concludes, without the evidence that changes with every run: a new
    history row is written when the conclusion changes, not each time it is re-confirmed
    (the evidence behind any moment is re-derivable from the observations and runs)."""
    checks = [
        {k: c[k] for k in ("id", "status", "failing", "excepted", "via")} for c in detail["checks"]
    ]
    return hashlib.sha256(canonicalize({"s": status, "c": checks})).hexdigest()


def recorded_findings(
    rt: Runtime, *, as_of: datetime, framework: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(framework, control) -> the newest finding an assessment had stored by ``as_of``
    for a time at or before ``as_of``: what the tool had said then."""
    findings = t.findings
    moment = _aware(as_of)
    cond = [findings.c.assessed_at <= moment, findings.c.as_of <= moment]
    if framework:
        cond.append(findings.c.framework == framework)
    newest = (
        sa.select(sa.func.max(findings.c.id))
        .where(*cond)
        .group_by(findings.c.framework, findings.c.control_id)
    )
    with rt.engine.connect() as conn:
        rows = conn.execute(sa.select(findings).where(findings.c.id.in_(newest)))
        return {
            (r.framework, r.control_id): {
                "status": r.status,
                "as_of": r.as_of,
                "assessed_at": r.assessed_at,
                "detail": r.detail,
                "library_sha256": r.library_sha256,
            }
            for r in rows
        }


# ---- small helpers ------------------------------------------------------------------
def _frameworks(library: Library, frameworks: Sequence[str] | None) -> list[str]:
    if not frameworks:
        return sorted(library.catalogs)
    unknown = [f for f in frameworks if f not in library.catalogs]
    if unknown:
        known = ", ".join(sorted(library.catalogs))
        raise UsageError(f"unknown framework {', '.join(unknown)} (known: {known})")
    return list(frameworks)


def _aware(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise UsageError(f"time {moment.isoformat()} has no zone; give one (e.g. Z)")
    return moment.astimezone(UTC)


def parse_time(text: str, *, bare_date: str = "end") -> datetime:
    """ISO 8601 with a zone, or a bare date: ``end`` of that day (status on that day) or its
    ``start`` (an exception starts or expires on that day). Naive times are refused."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return end_of_day(day) if bare_date == "end" else start
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"not a time: {text!r}", remedy="use e.g. 2026-03-01 or 2026-03-01T12:00:00Z"
        ) from None
    return _aware(moment)
