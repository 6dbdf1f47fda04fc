"""The one scale scanners are mapped onto: severities, fix states, times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from evidence.collectors.files._normalize import (
    fix_state,
    parse_loose_date,
    parse_time,
    severity_from_label,
    severity_from_score,
)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("CRITICAL", "critical"),
        ("High", "high"),
        ("moderate", "medium"),
        ("Negligible", "negligible"),
        ("UNKNOWN", "unknown"),
        ("error", "high"),  # SARIF levels
        ("warning", "medium"),
        ("note", "low"),
        ("none", "negligible"),
        ("recommendation", "low"),  # CodeQL problem.severity
        ("severe", "unknown"),  # a word we do not know is not guessed at
        (None, "unknown"),
        (3, "unknown"),
    ],
)
def test_severity_labels(label, expected):
    assert severity_from_label(label) == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        ("9.8", "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (4.0, "medium"),
        (0.1, "low"),
        (0.0, "negligible"),
        ("11", "unknown"),
        ("n/a", "unknown"),
    ],
)
def test_severity_scores(score, expected):
    assert severity_from_score(score) == expected


@pytest.mark.parametrize(
    ("raw", "fixed", "expected"),
    [
        ("fixed", "", "fixed"),
        ("will_not_fix", "", "wont-fix"),
        ("end_of_life", "", "wont-fix"),
        ("fix_deferred", "", "not-fixed"),
        ("not_affected", "1.2", "not-affected"),
        ("", "1.2", "fixed"),  # grype's empty state with a fix version
        ("", "", "unknown"),
        (None, "", "unknown"),
        ("something-new", "1.2", "unknown"),
    ],
)
def test_fix_states(raw, fixed, expected):
    assert fix_state(raw, fixed) == expected


def test_times():
    assert parse_time("2021-08-25T12:20:30.000000005Z") == datetime(
        2021, 8, 25, 12, 20, 30, tzinfo=UTC
    )
    assert parse_time("2021-07-15T22:00:32+07:00") == datetime(2021, 7, 15, 15, 0, 32, tzinfo=UTC)
    assert parse_time("2021-07-15T22:00:32") is None  # no offset: not guessed
    assert parse_time("0001-01-01T00:00:00Z") is None  # Go's zero time
    assert parse_time("") is None
    assert parse_loose_date("10-19-2003") == datetime(2003, 10, 19, tzinfo=UTC)
    assert parse_loose_date("13-45-2003") is None
