"""Every rule kind at its boundaries: exactly at the limit, one second over, a missing field,
a field of the wrong type. Pure: checks judged over rows built here, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from evidence.assessment.evaluate import CheckState, ExceptionView, Row, RunView, SourceHistory
from evidence.assessment.models import Check
from evidence.assessment.rules import compile_cel

T = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def make_check(rule: dict[str, Any], kind: str = "import.record", **extra: Any) -> Check:
    return Check.model_validate(
        {
            "id": "c",
            "title": "t",
            "kind": kind,
            "rule": rule,
            "ttl_days": 7,
            "severity": "high",
            "controls": {"soc2": {"CC6.1": "why"}},
            **extra,
        }
    )


_ids = iter(range(1, 10**6))


def row(attributes: dict[str, Any], subject: str = "s1", **kw: Any) -> Row:
    values: dict[str, Any] = {
        "id": next(_ids),
        "source": "src",
        "subject": subject,
        "scope": "",
        "observed_at": None,
        "attributes": attributes,
        "valid_from": T - timedelta(hours=1),
        "valid_to": None,
        "envelope": "sha256:" + "a" * 64,
    }
    values.update(kw)
    return Row(**values)


def complete_run(at: datetime = T - timedelta(hours=1)) -> dict[str, SourceHistory]:
    run = RunView("r1", "src", at, "complete", frozenset(), frozenset(), "sha256:" + "b" * 64)
    return {"src": SourceHistory([run])}


def judge(check: Check, rows: list[Row], exceptions: list[ExceptionView] | None = None) -> Any:
    program = compile_cel(check.rule.expression) if check.rule.type == "cel" else None
    state = CheckState(check, T, exceptions or [], program=program)
    for r in rows:
        state.feed(r)
    return state.finish(complete_run(), ["src"], {"src": {""}}, {"src": {""}})


def status_of(check: Check, attributes: dict[str, Any]) -> str:
    return judge(check, [row(attributes)]).status


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# ---- max_age --------------------------------------------------------------------------
MAX_AGE = make_check({"type": "max_age", "field": "t", "max_days": 365})


def test_max_age_exactly_at_the_limit_passes():
    assert status_of(MAX_AGE, {"t": iso(T - timedelta(days=365))}) == "satisfied"


def test_max_age_one_second_over_fails_with_reason():
    result = judge(MAX_AGE, [row({"t": iso(T - timedelta(days=365) - SECOND)})])
    assert result.status == "not-satisfied"
    assert result.failing == {"s1": result.failing["s1"]}
    assert "older than 365 days" in result.failing["s1"]


@pytest.mark.parametrize("attributes", [{}, {"t": None}], ids=["missing", "null"])
def test_max_age_missing_field_fails(attributes):
    result = judge(MAX_AGE, [row(attributes)])
    assert result.status == "not-satisfied"
    assert "missing" in result.failing["s1"]


@pytest.mark.parametrize("value", [12345, "yesterday", "2026-01-01T00:00:00", True])
def test_max_age_wrong_type_or_naive_time_fails(value):
    result = judge(MAX_AGE, [row({"t": value})])
    assert result.status == "not-satisfied"
    assert "not a time with a zone" in result.failing["s1"]


def test_max_age_on_observed_at():
    check = make_check({"type": "max_age", "field": "@observed_at", "max_days": 7})
    ok = row({}, observed_at=T - timedelta(days=7))
    late = row({}, subject="s2", observed_at=T - timedelta(days=7) - SECOND)
    none = row({}, subject="s3")
    result = judge(check, [ok, late, none])
    assert sorted(result.failing) == ["s2", "s3"]


def test_max_age_group_by_judges_the_newest_of_each_group():
    check = make_check(
        {"type": "max_age", "field": "done", "max_days": 90, "group_by": "definition"}
    )
    rows = [
        row({"definition": "d1", "done": iso(T - timedelta(days=200))}, subject="d1/i1"),
        row({"definition": "d1", "done": iso(T - timedelta(days=90))}, subject="d1/i2"),
        row({"definition": "d2", "done": iso(T - timedelta(days=90) - SECOND)}, subject="d2/i1"),
    ]
    result = judge(check, rows)
    assert result.status == "not-satisfied"
    assert list(result.failing) == ["d2"]


# ---- min_value / max_value -------------------------------------------------------------
MIN = make_check({"type": "min_value", "field": "days", "min": 7})
MAX = make_check({"type": "max_value", "field": "days", "max": 2555})


def test_min_value_boundaries():
    assert status_of(MIN, {"days": 7}) == "satisfied"
    assert status_of(MIN, {"days": 7.0}) == "satisfied"
    assert status_of(MIN, {"days": 6.999}) == "not-satisfied"
    assert status_of(MIN, {"days": 6}) == "not-satisfied"


def test_max_value_boundaries():
    assert status_of(MAX, {"days": 2555}) == "satisfied"
    assert status_of(MAX, {"days": 2556}) == "not-satisfied"


@pytest.mark.parametrize("value", ["7", True, None, [7], {"d": 7}])
def test_min_value_wrong_type_fails(value):
    result = judge(MIN, [row({"days": value})])
    assert result.status == "not-satisfied"
    assert "missing" in result.failing["s1"] or "not a number" in result.failing["s1"]


def test_min_and_max_value_missing_field_fail():
    assert "missing" in judge(MIN, [row({})]).failing["s1"]
    assert "missing" in judge(MAX, [row({"other": 1})]).failing["s1"]


def test_nested_field_path():
    check = make_check({"type": "min_value", "field": "details.days", "min": 7})
    assert status_of(check, {"details": {"days": 7}}) == "satisfied"
    assert status_of(check, {"details": {"days": 6}}) == "not-satisfied"
    assert status_of(check, {"details": 7}) == "not-satisfied"


# ---- allowed_values -------------------------------------------------------------------
ALLOWED = make_check({"type": "allowed_values", "field": "locked", "allowed": [True]})


def test_allowed_values():
    assert status_of(ALLOWED, {"locked": True}) == "satisfied"
    assert status_of(ALLOWED, {"locked": False}) == "not-satisfied"


@pytest.mark.parametrize("value", [1, "true", None])
def test_allowed_values_are_type_strict(value):
    # 1 == True in Python; not in evidence.
    assert status_of(ALLOWED, {"locked": value}) == "not-satisfied"


def test_allowed_values_missing_field_fails():
    assert "missing" in judge(ALLOWED, [row({})]).failing["s1"]


# ---- max_failing ----------------------------------------------------------------------
def failing_rows(n_bad: int, n_good: int = 2) -> list[Row]:
    bad = [row({"state": "NonCompliant"}, subject=f"bad{i}") for i in range(n_bad)]
    good = [row({"state": "Compliant"}, subject=f"good{i}") for i in range(n_good)]
    return bad + good


def test_max_failing_exactly_n_passes_and_n_plus_one_fails():
    check = make_check(
        {
            "type": "max_failing",
            "field": "state",
            "failing_values": ["NonCompliant"],
            "max_count": 2,
        }
    )
    at_limit = judge(check, failing_rows(2))
    assert at_limit.status == "satisfied"
    assert sorted(at_limit.failing) == ["bad0", "bad1"]  # still named, within tolerance
    assert judge(check, failing_rows(3)).status == "not-satisfied"


def test_max_failing_missing_field_counts_as_failing():
    check = make_check(
        {"type": "max_failing", "field": "state", "failing_values": ["NonCompliant"]}
    )
    result = judge(check, [row({}, subject="x")])
    assert result.status == "not-satisfied"
    assert "missing" in result.failing["x"]


def test_max_failing_wrong_type_is_not_the_failing_value():
    check = make_check({"type": "max_failing", "field": "state", "failing_values": [False]})
    assert judge(check, [row({"state": 0})]).status == "satisfied"
    assert judge(check, [row({"state": False})]).status == "not-satisfied"


def test_excepted_subjects_do_not_count():
    check = make_check(
        {"type": "max_failing", "field": "state", "failing_values": ["NonCompliant"]}
    )
    exception = ExceptionView(
        "e1", "c", "bad*", T - timedelta(days=1), T + SECOND, T - timedelta(days=1), None
    )
    result = judge(check, failing_rows(2), [exception])
    assert result.status == "satisfied"
    assert result.failing == {}
    assert result.excepted == {"bad0": ["e1"], "bad1": ["e1"]}


# ---- open_findings_sla ----------------------------------------------------------------
SLA = make_check(
    {
        "type": "open_findings_sla",
        "severity_field": "severity",
        "max_days": {"critical": 15, "high": 30},
    }
)


def sla(rows: list[Row]) -> Any:
    state = CheckState(SLA, T, [])
    state.feed_history(rows)
    return state.finish(complete_run(), ["src"], {"src": {""}}, {"src": {""}})


def test_sla_exactly_at_the_limit_passes_one_second_over_fails():
    assert (
        sla([row({"severity": "critical"}, valid_from=T - timedelta(days=15))]).status
        == "satisfied"
    )
    late = sla([row({"severity": "CRITICAL"}, valid_from=T - timedelta(days=15) - SECOND)])
    assert late.status == "not-satisfied"
    assert "over 15 days" in late.failing["s1"]
    assert sla([row({"severity": "high"}, valid_from=T - timedelta(days=30))]).status == "satisfied"
    assert (
        sla([row({"severity": "high"}, valid_from=T - timedelta(days=31))]).status
        == "not-satisfied"
    )


def test_sla_severity_without_a_promise_passes():
    assert sla([row({"severity": "low"}, valid_from=T - timedelta(days=900))]).status == "satisfied"


@pytest.mark.parametrize("attributes", [{}, {"severity": None}, {"severity": 5}])
def test_sla_missing_or_mistyped_severity_fails(attributes):
    assert sla([row(attributes)]).status == "not-satisfied"


def test_sla_first_seen_is_the_start_of_the_unbroken_open_history():
    t0 = T - timedelta(days=20)
    t1 = T - timedelta(days=10)
    # Changed at t1 (say, a new fixed_version) but open all along: counts from t0.
    chained = [
        row({"severity": "critical", "v": 1}, valid_from=t0, valid_to=t1),
        row({"severity": "critical", "v": 2}, valid_from=t1),
    ]
    assert sla(chained).status == "not-satisfied"
    # Fixed (closed) at t1 - 1 day, seen again at t1: a new history, 10 days old.
    gap = [
        row({"severity": "critical"}, valid_from=t0, valid_to=t1 - timedelta(days=1)),
        row({"severity": "critical"}, valid_from=t1),
    ]
    assert sla(gap).status == "satisfied"


def test_sla_closed_finding_is_not_open():
    closed = [row({"severity": "critical"}, valid_from=T - timedelta(days=90), valid_to=T - SECOND)]
    result = sla(closed)
    assert result.failing == {}
    assert result.status == "satisfied"  # a successful run found nothing open


def test_findings_rule_with_no_rows_and_no_run_is_not_assessed():
    state = CheckState(SLA, T, [])
    assert state.finish({}, [], {}, {}).status == "not-assessed"


# ---- cel ------------------------------------------------------------------------------
CEL = make_check(
    {"type": "cel", "expression": "attributes.completed * 100 >= attributes.assigned * 95"}
)


def test_cel_true_passes_false_fails():
    assert status_of(CEL, {"completed": 95, "assigned": 100}) == "satisfied"
    result = judge(CEL, [row({"completed": 94, "assigned": 100})])
    assert result.failing["s1"] == "expression is false"


def test_cel_missing_field_fails_with_reason():
    result = judge(CEL, [row({"assigned": 100})])
    assert result.status == "not-satisfied"
    assert "missing field" in result.failing["s1"]


def test_cel_wrong_type_fails_with_reason():
    result = judge(CEL, [row({"completed": "95", "assigned": 100})])
    assert result.status == "not-satisfied"
    assert "expression failed" in result.failing["s1"]


def test_cel_non_boolean_result_fails():
    check = make_check({"type": "cel", "expression": "attributes.completed"})
    result = judge(check, [row({"completed": 1})])
    assert "not true or false" in result.failing["s1"]


def test_cel_sees_subject_times_and_null():
    check = make_check(
        {
            "type": "cel",
            "expression": "subject.startsWith('k') && observed_at != null "
            "&& as_of - observed_at <= duration('24h') && attributes.p != null",
        }
    )
    fresh = row({"p": {"a": 1}}, subject="k1", observed_at=T - timedelta(hours=24))
    old = row({"p": {"a": 1}}, subject="k2", observed_at=T - timedelta(hours=24) - SECOND)
    nulled = row({"p": None}, subject="k3", observed_at=T)
    result = judge(check, [fresh, old, nulled])
    assert sorted(result.failing) == ["k2", "k3"]


def test_builtin_key_rotation_policy_expression():
    from evidence.assessment import load_library

    library = load_library()
    check = library.checks["key-rotation-policy-set"]
    state = CheckState(check, T, [], program=library.programs[check.id])
    state.feed(row({"enabled": True, "rotation_policy": None}, subject="a"))
    state.feed(
        row(
            {
                "enabled": True,
                "rotation_policy": {"rotate_after": "P90D", "rotate_before_expiry": None},
            },
            subject="b",
        )
    )
    state.feed(
        row(
            {
                "enabled": True,
                "rotation_policy": {"rotate_after": None, "rotate_before_expiry": None},
            },
            subject="c",
        )
    )
    state.feed(row({"enabled": False, "rotation_policy": None}, subject="d"))  # not selected
    result = state.finish(complete_run(), ["src"], {"src": {""}}, {"src": {""}})
    assert sorted(result.failing) == ["a", "c"]
    assert result.observations_total == 3


# ---- statuses beyond the rule -----------------------------------------------------------
def test_no_evidence_is_not_assessed_never_a_pass():
    state = CheckState(MIN, T, [])
    assert state.finish(complete_run(), ["src"], {}, {}).status == "not-assessed"


def test_stale_when_the_newest_confirmation_is_older_than_the_ttl():
    old = T - timedelta(days=7) - SECOND
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}, valid_from=old))
    assert state.finish(complete_run(old), ["src"], {}, {}).status == "stale"
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}, valid_from=old))
    # A later complete run re-confirms the unchanged row.
    assert state.finish(complete_run(T - timedelta(days=7)), ["src"], {}, {}).status == "satisfied"


def test_error_when_the_newest_run_failed_even_if_old_rows_pass():
    failed = RunView("r2", "src", T - SECOND, "failed", frozenset(), frozenset({""}), None, "boom")
    ok = RunView("r1", "src", T - timedelta(days=1), "complete", frozenset(), frozenset(), None)
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}))
    result = state.finish(
        {"src": SourceHistory([ok, failed])}, ["src"], {"src": {""}}, {"src": {""}}
    )
    assert result.status == "error"
    assert "boom" in result.reasons[0]


def test_partial_run_is_an_error_only_for_scopes_holding_the_subjects():
    partial = RunView("r2", "src", T - SECOND, "partial", frozenset({"a"}), frozenset({"b"}), None)
    history = {"src": SourceHistory([partial])}
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}, scope="a"))
    # scope b holds rows of another kind only: not ours
    assert state.finish(history, ["src"], {"src": {"a"}}, {"src": {"a", "b"}}).status == "satisfied"
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}, scope="a"))
    # scope b holds rows of this kind
    assert (
        state.finish(history, ["src"], {"src": {"a", "b"}}, {"src": {"a", "b"}}).status == "error"
    )
    state = CheckState(MIN, T, [])
    state.feed(row({"days": 30}, scope="a"))
    # scope b never produced anything we know of: it might have held ours -> error
    assert state.finish(history, ["src"], {"src": {"a"}}, {"src": {"a"}}).status == "error"


def test_builtin_access_review_checks():
    from evidence.assessment import load_library

    library = load_library()
    recent = CheckState(library.checks["access-review-recent"], T, [])
    denials = CheckState(library.checks["access-review-denials-applied"], T, [])

    def review(
        definition: str, instance: str, status: str, completed: datetime | None, applied: bool
    ):
        return row(
            {
                "definition_id": definition,
                "status": status,
                "completed_at": iso(completed) if completed else None,
                "denials_applied": applied,
            },
            subject=f"{definition}/{instance}",
        )

    rows = [
        # d1: an old completed instance and a recent applied one -> recent enough
        review("d1", "i1", "Completed", T - timedelta(days=200), True),
        review("d1", "i2", "Applied", T - timedelta(days=90), True),
        # d2: the newest completed is 91 days old; the current instance is still running
        review("d2", "i1", "Completed", T - timedelta(days=91), False),
        review("d2", "i2", "InProgress", None, False),
        # d3: never completed
        review("d3", "i1", "InProgress", None, False),
    ]
    for r in rows:
        recent.feed(r)
        denials.feed(r)
    history = complete_run()
    assert sorted(recent.finish(history, ["src"], {}, {}).failing) == ["d2", "d3"]
    # in-progress instances are not judged on denials; the completed d2/i1 left a denial unapplied
    assert sorted(denials.finish(history, ["src"], {}, {}).failing) == ["d2/i1"]


def test_cel_over_the_whole_attributes_map_still_sees_every_key():
    # the evaluator hands CEL only the attributes an expression names, unless it uses the
    # map as a whole: a macro over its keys must see them all
    check = make_check(
        {"type": "cel", "expression": "attributes.exists(k, k == 'b') && size(attributes) == 2"}
    )
    assert status_of(check, {"a": 1, "b": 2}) == "satisfied"
    assert status_of(check, {"a": 1, "c": 2}) == "not-satisfied"
    narrow = make_check({"type": "cel", "expression": "attributes.a == 1"})
    assert status_of(narrow, {"a": 1, "big": list(range(1000))}) == "satisfied"
