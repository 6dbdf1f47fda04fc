"""Evaluate checks at a time T over rows the caller reads, and roll results up per control.

The caller (``services.assess``) streams the observations valid at T (and, for
SLA rules, their history) into one ``CheckState`` per check, hands over the
runs and exceptions known at T, and calls ``finish``. Precedence of a check's
status: ``error`` (the newest run behind its kind failed, or was partial for a
scope its subjects live in) > ``not-assessed`` (no evidence) > ``stale`` (the
newest confirmation of some evidence is older than the TTL) > ``not-satisfied``
> ``satisfied``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from evidence.assessment.library import Library
from evidence.assessment.models import (
    AllowedValues,
    CelRule,
    Check,
    MaxAge,
    MaxFailing,
    MaxValue,
    MinValue,
    OpenFindingsSla,
)
from evidence.assessment.rules import (
    Fact,
    Selector,
    Verdict,
    cel_attribute_keys,
    cel_names,
    field_value,
    judge_allowed,
    judge_cel,
    judge_failing_value,
    judge_max_age,
    judge_max_value,
    judge_min_value,
    judge_sla,
    value_keys,
)

STATUSES = ("satisfied", "not-satisfied", "not-assessed", "stale", "error")
# Worst first, for rolling checks up into a control: a known failure outranks not knowing.
_CONTROL_ORDER = ("not-satisfied", "error", "stale", "not-assessed", "satisfied")
_NEGATIVE = frozenset({"not-satisfied", "error"})
MAX_LISTED_OBSERVATIONS = 1000


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the observations table."""

    id: int
    source: str
    subject: str
    scope: str
    observed_at: datetime | None
    attributes: dict[str, Any]
    valid_from: datetime
    valid_to: datetime | None
    envelope: str

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or self.valid_to > moment)


@dataclass(frozen=True, slots=True)
class RunView:
    id: str
    source: str
    started_at: datetime
    status: str  # complete | partial | failed
    ok_scopes: frozenset[str]
    failed_scopes: frozenset[str]
    envelope: str | None
    message: str = ""


class SourceHistory:
    """The finished runs of one source at or before T, newest first."""

    def __init__(self, runs: Sequence[RunView]) -> None:
        self.runs = sorted(runs, key=lambda r: r.started_at, reverse=True)

    @property
    def latest(self) -> RunView | None:
        return self.runs[0] if self.runs else None

    def confirmed(self, scope: str) -> RunView | None:
        """The newest run that re-read ``scope`` successfully (and so re-confirmed its facts)."""
        for run in self.runs:
            if run.status == "complete" or (run.status == "partial" and scope in run.ok_scopes):
                return run
        return None


@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: str
    check_id: str
    pattern: str
    starts_at: datetime
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None

    def active(self, moment: datetime) -> bool:
        """Known at ``moment`` (recorded, not yet revoked) and in force (start <= T < expiry)."""
        return (
            self.created_at <= moment
            and self.starts_at <= moment < self.expires_at
            and (self.revoked_at is None or self.revoked_at > moment)
        )

    def covers(self, subject: str) -> bool:
        return fnmatch.fnmatchcase(subject, self.pattern)


@dataclass
class CheckResult:
    check_id: str
    status: str
    reasons: list[str]
    failing: dict[str, str]  # subject -> why
    excepted: dict[str, list[str]]  # subject -> exception ids
    evidence: list[str]  # envelope sha256 of the artifacts the result rests on
    observations: list[int]
    observations_total: int

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.check_id,
            "status": self.status,
            "failing": sorted(self.failing),
            "excepted": sorted(self.excepted),
            "evidence": self.evidence,
        }
        if detail:
            out |= {
                "reasons": self.reasons,
                "failing_reasons": dict(sorted(self.failing.items())),
                "exceptions": sorted({e for ids in self.excepted.values() for e in ids}),
                "observations": self.observations,
                "observations_total": self.observations_total,
            }
        return out


@dataclass
class CheckState:
    """Accumulates one check's verdicts over the rows of its kind at ``as_of``."""

    check: Check
    as_of: datetime
    exceptions: list[ExceptionView]
    program: Any = None
    evaluated: int = 0
    failing: dict[str, str] = field(default_factory=dict)
    failing_ids: dict[str, int] = field(default_factory=dict)
    excepted: dict[str, list[str]] = field(default_factory=dict)
    envelopes: set[str] = field(default_factory=set)
    observation_ids: list[int] = field(default_factory=list)
    # (source, scope) -> oldest valid_from selected there; staleness is judged per place
    places: dict[tuple[str, str], datetime] = field(default_factory=dict)
    groups: dict[str, list[Row]] = field(default_factory=dict)  # max_age group_by: group -> rows
    cel_reads: frozenset[str] = frozenset()
    cel_keys: frozenset[str] | None = None
    selects: Selector = field(init=False)
    listed_keys: frozenset[Any] = frozenset()

    def __post_init__(self) -> None:
        self.selects = Selector(self.check.where)
        if self.program is not None:
            self.cel_reads = cel_names(self.program)
            if isinstance(self.check.rule, CelRule):
                self.cel_keys = cel_attribute_keys(self.check.rule.expression)
        rule = self.check.rule
        if isinstance(rule, AllowedValues):
            self.listed_keys = value_keys(rule.allowed)
        elif isinstance(rule, MaxFailing):
            self.listed_keys = value_keys(rule.failing_values)

    def feed(self, row: Row, first_seen: datetime | None = None) -> None:
        """Judge ``row`` (valid at ``as_of``) when the check's selector takes it."""
        if not self.selects(row):
            return
        self.evaluated += 1
        self.envelopes.add(row.envelope)
        if len(self.observation_ids) < MAX_LISTED_OBSERVATIONS:
            self.observation_ids.append(row.id)
        place = (row.source, row.scope)
        if place not in self.places or row.valid_from < self.places[place]:
            self.places[place] = row.valid_from
        rule = self.check.rule
        if isinstance(rule, MaxAge) and rule.group_by:
            group = field_value(row, rule.group_by)
            name = str(group) if isinstance(group, str | int) and group != "" else row.subject
            self.groups.setdefault(name, []).append(row)
            return
        self._record(row.subject, row.id, self._judge(row, first_seen or row.valid_from))

    def _record(self, subject: str, row_id: int, verdict: Verdict) -> None:
        if verdict.ok:
            return
        applied = [e.id for e in self.exceptions if e.covers(subject)]
        if applied:
            self.excepted[subject] = applied
        else:
            self.failing[subject] = verdict.reason
            self.failing_ids[subject] = row_id

    def _judge_groups(self) -> None:
        """A group passes when any of its rows passes (its newest time is recent enough)."""
        for name, rows in sorted(self.groups.items()):
            verdicts = [(self._judge(row, row.valid_from), row) for row in rows]
            if any(v.ok for v, _ in verdicts):
                continue
            verdict, row = verdicts[-1]
            self._record(name, row.id, verdict)
        self.groups.clear()

    def feed_history(self, rows: Sequence[Row]) -> None:
        """``rows``: one subject's rows up to ``as_of``, oldest first. The first-seen time is
        the start of the unbroken run of rows, selected by the check, that ends at ``as_of``."""
        if not rows or not rows[-1].valid_at(self.as_of):
            return
        current = rows[-1]
        start = len(rows) - 1
        while (
            start > 0
            and rows[start - 1].valid_to == rows[start].valid_from
            and self.selects(rows[start - 1])
        ):
            start -= 1
        self.feed(current, rows[start].valid_from)

    def _nothing_selected(
        self,
        histories: dict[str, SourceHistory],
        producers: Iterable[str],
        evidence: set[str],
        reasons: list[str],
    ) -> str:
        """No subject selected. For findings-style rules (SLA, count of failing) an empty,
        successfully collected result is good news: satisfied while the newest successful
        run of a producing source is within the TTL. For every other rule it is no evidence."""
        if not isinstance(self.check.rule, OpenFindingsSla | MaxFailing):
            reasons.append(f"no evidence: no {self.check.kind} observation selected at this time")
            return "not-assessed"
        runs = []
        for source in producers:
            latest = histories.get(source, SourceHistory(())).latest
            if latest is not None and latest.status in ("complete", "partial"):
                runs.append(latest)
        if not runs:
            reasons.append(
                f"no evidence: no successful run of a source producing {self.check.kind}"
            )
            return "not-assessed"
        newest = max(runs, key=lambda r: r.started_at)
        evidence.update(r.envelope for r in runs if r.envelope)
        if self.as_of - newest.started_at > timedelta(days=self.check.ttl_days):
            reasons.append(
                f"nothing open, but the newest run ({newest.id}, {newest.started_at.isoformat()}) "
                f"is older than {self.check.ttl_days:g} days"
            )
            return "stale"
        reasons.append(f"nothing open: run {newest.id} found no {self.check.kind} selected")
        return "satisfied"

    def _judge(self, fact: Fact, first_seen: datetime) -> Verdict:
        rule = self.check.rule
        if isinstance(rule, MaxAge):
            return judge_max_age(rule, fact, self.as_of)
        if isinstance(rule, MinValue):
            return judge_min_value(rule, fact)
        if isinstance(rule, MaxValue):
            return judge_max_value(rule, fact)
        if isinstance(rule, AllowedValues):
            return judge_allowed(rule, fact, self.listed_keys)
        if isinstance(rule, MaxFailing):
            return judge_failing_value(rule, fact, self.listed_keys)
        if isinstance(rule, OpenFindingsSla):
            return judge_sla(rule, fact, first_seen, self.as_of)
        if isinstance(rule, CelRule):
            return judge_cel(rule, self.program, fact, self.as_of, self.cel_reads, self.cel_keys)
        raise AssertionError(f"unhandled rule {rule!r}")  # pragma: no cover - union is closed

    def finish(
        self,
        histories: dict[str, SourceHistory],
        producers: Iterable[str],
        kind_scopes: dict[str, set[str]],
        known_scopes: dict[str, set[str]],
    ) -> CheckResult:
        """``producers``: sources known to produce this kind; ``kind_scopes``: source ->
        scopes holding rows of this kind at T; ``known_scopes``: source -> scopes of any kind."""
        self._judge_groups()
        reasons: list[str] = []
        evidence = set(self.envelopes)
        for source in sorted(set(producers) | {s for s, _ in self.places}):
            latest = histories.get(source, SourceHistory(())).latest
            if latest is None:
                continue
            if latest.envelope:
                evidence.add(latest.envelope)
            if latest.status == "failed":
                reasons.append(f"source {source}: newest run {latest.id} failed: {latest.message}")
            elif latest.status == "partial":
                for scope in sorted(latest.failed_scopes):
                    ours = scope in kind_scopes.get(source, set())
                    unknown = scope not in known_scopes.get(source, set())
                    if ours or unknown:
                        reasons.append(
                            f"source {source}: newest run {latest.id} failed for scope "
                            f"{scope or '(all)'}"
                        )
        status = "error" if reasons else ""
        if not status and self.evaluated == 0:
            status = self._nothing_selected(histories, producers, evidence, reasons)
        if not status:
            ttl = timedelta(days=self.check.ttl_days)
            for (source, scope), oldest in sorted(self.places.items()):
                run = histories.get(source, SourceHistory(())).confirmed(scope)
                confirmed_at = run.started_at if run else oldest
                if run and run.envelope:
                    evidence.add(run.envelope)
                if self.as_of - confirmed_at > ttl:
                    status = "stale"
                    reasons.append(
                        f"source {source} scope {scope or '(all)'}: newest evidence from "
                        f"{confirmed_at.isoformat()}, older than {self.check.ttl_days:g} days"
                    )
        if not status:
            limit = self.check.rule.max_count if isinstance(self.check.rule, MaxFailing) else 0
            if len(self.failing) > limit:
                status = "not-satisfied"
                reasons.append(f"{len(self.failing)} failing subject(s), at most {limit} allowed")
            else:
                status = "satisfied"
        listed = sorted(set(self.observation_ids) | set(self.failing_ids.values()))
        return CheckResult(
            check_id=self.check.id,
            status=status,
            reasons=reasons,
            failing=self.failing,
            excepted=self.excepted,
            evidence=sorted(evidence),
            observations=listed,
            observations_total=self.evaluated,
        )


# ---- per control ---------------------------------------------------------------------
@dataclass
class ControlStatus:
    framework: str
    id: str
    title: str
    status: str
    checks: list[tuple[CheckResult, str]]  # (result, how it reaches the control)

    def to_json(self, detail: bool = False) -> dict[str, Any]:
        checks = []
        for result, via in self.checks:
            entry = result.to_json(detail)
            if detail:
                entry["via"] = via
            checks.append(entry)
        return {"id": self.id, "title": self.title, "status": self.status, "checks": checks}


@dataclass
class FrameworkStatus:
    id: str
    version: str
    controls: list[ControlStatus]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for control in self.controls:
            out[control.status] += 1
        return out


def control_links(library: Library) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(framework, control) -> [(check id, via)]. ``via`` is ``direct``, ``equal:<fw:id>``
    (a crosswalk equal: counts fully) or ``related:<fw:id>`` (another relation, or a
    paragraph of this article: only its failures and errors show here)."""
    direct: dict[tuple[str, str], list[str]] = {}
    for check in library.checks.values():
        for framework, mapping in check.controls.items():
            for control_id in mapping:
                direct.setdefault((framework, control_id), []).append(check.id)
    links: dict[tuple[str, str], list[tuple[str, str]]] = {
        key: [(c, "direct") for c in ids] for key, ids in direct.items()
    }

    def add(to: tuple[str, str], frm: tuple[str, str], mode: str) -> None:
        present = {c for c, _ in links.get(to, [])}
        for check_id in direct.get(frm, []):
            if check_id not in present:
                links.setdefault(to, []).append((check_id, f"{mode}:{frm[0]}:{frm[1]}"))
                present.add(check_id)

    for rel in library.relations:
        a = tuple(rel.a.split(":", 1))
        b = tuple(rel.b.split(":", 1))
        mode = "equal" if rel.relation == "equal" else "related"
        add((b[0], b[1]), (a[0], a[1]), mode)
        add((a[0], a[1]), (b[0], b[1]), mode)
    for fw, catalog in library.catalogs.items():
        for control in catalog.controls:
            if control.parent:
                add((fw, control.parent), (fw, control.id), "related")
    return links


def roll_up(
    library: Library,
    results: dict[str, CheckResult],
    frameworks: Sequence[str] | None = None,
) -> list[FrameworkStatus]:
    """Every control of every (chosen) framework with its status and the checks behind it."""
    links = control_links(library)
    out = []
    for framework in frameworks or sorted(library.catalogs):
        catalog = library.catalogs[framework]
        controls = []
        for control in catalog.controls:
            taken: list[tuple[CheckResult, str]] = []
            for check_id, via in links.get((framework, control.id), []):
                result = results.get(check_id)
                if result is None:
                    continue
                if via.startswith("related:") and result.status not in _NEGATIVE:
                    continue
                taken.append((result, via))
            status = "not-assessed"
            if taken:
                status = min((r.status for r, _ in taken), key=_CONTROL_ORDER.index)
            controls.append(ControlStatus(framework, control.id, control.title, status, taken))
        out.append(FrameworkStatus(framework, catalog.version, controls))
    return out
