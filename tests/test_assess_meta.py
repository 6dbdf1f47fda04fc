"""Walk every registry: kinds, checks, catalogs, crosswalk. Data is data, and it must hold."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from evidence.assessment import load_library
from evidence.assessment.models import CelRule
from evidence.collectors.registry import collectors
from evidence.domain.kinds import KINDS

LIBRARY = load_library()
# Kinds without a built-in check, and why: what an imported file means is the operator's call
# (tests/test_assess_scenario.py and sample/checks/manual.yaml show custom checks for it).
NO_DEFAULT_CHECK = {"import.record"}


def test_every_check_reads_a_kind_from_kinds_py():
    for check in LIBRARY.checks.values():
        assert check.kind in KINDS, check.id
        assert not check.custom_kind, check.id


def test_every_kind_has_a_check():
    covered = {c.kind for c in LIBRARY.checks.values()}
    assert set(KINDS) - covered == NO_DEFAULT_CHECK


def test_every_registered_collector_kind_has_a_check():
    covered = {c.kind for c in LIBRARY.checks.values()}
    for name, cls in collectors().items():
        produced = set(cls.observation_kinds) - NO_DEFAULT_CHECK
        assert produced <= covered, f"{name} produces {produced - covered} with no check"


def test_every_mapped_control_is_in_its_catalog():
    for check in LIBRARY.checks.values():
        for framework, mapping in check.controls.items():
            for control_id, rationale in mapping.items():
                assert LIBRARY.control(framework, control_id), (check.id, framework, control_id)
                assert rationale.strip()
                assert "\n" not in rationale


def test_every_crosswalk_id_exists_and_no_pair_twice():
    pairs = Counter()
    for rel in LIBRARY.relations:
        for side in (rel.a, rel.b):
            framework, _, control_id = side.partition(":")
            assert LIBRARY.control(framework, control_id), side
        assert rel.a != rel.b
        pairs[frozenset((rel.a, rel.b))] += 1
    assert [p for p, n in pairs.items() if n > 1] == []


def test_ids_are_unique():
    for catalog in LIBRARY.catalogs.values():
        ids = [c.id for c in catalog.controls]
        assert len(ids) == len(set(ids)), catalog.framework
    assert len(LIBRARY.checks) == len(set(LIBRARY.checks))


def test_catalogs_are_complete_and_ids_written_as_the_standards_do():
    soc2 = [c.id for c in LIBRARY.catalogs["soc2"].controls]
    common = {
        "CC1": 5,
        "CC2": 3,
        "CC3": 4,
        "CC4": 2,
        "CC5": 3,
        "CC6": 8,
        "CC7": 5,
        "CC8": 1,
        "CC9": 2,
    }
    for series, count in common.items():
        assert [i for i in soc2 if i.split(".")[0] == series] == [
            f"{series}.{n}" for n in range(1, count + 1)
        ]
    for prefix in ("A1.", "C1.", "PI1.", "P1.", "P2.", "P3.", "P4.", "P5.", "P6.", "P7.", "P8."):
        assert any(i.startswith(prefix) for i in soc2), prefix
    iso = LIBRARY.catalogs["iso27001"].controls
    expected = (
        [f"A.5.{n}" for n in range(1, 38)]
        + [f"A.6.{n}" for n in range(1, 9)]
        + [f"A.7.{n}" for n in range(1, 15)]
        + [f"A.8.{n}" for n in range(1, 35)]
    )
    assert len(expected) == 93
    assert [c.id for c in iso] == expected
    themes = {"5": "Organizational", "6": "People", "7": "Physical", "8": "Technological"}
    for control in iso:
        assert control.theme == themes[control.id.split(".")[1]], control.id
    gdpr = {c.id for c in LIBRARY.catalogs["gdpr"].controls}
    for article in (5, 6, 17, 25, 28, 30, 32, 33, 34, 35, 44, 45, 46, 47, 48, 49):
        assert f"Art.{article}" in gdpr
    for paragraph in gdpr:
        assert re.fullmatch(r"Art\.\d+(\(\d+\)(\([a-z]\))?)?", paragraph), paragraph
    for catalog in LIBRARY.catalogs.values():
        assert catalog.version.strip()


@pytest.mark.parametrize(
    ("check_id", "expected"),
    [
        (
            "key-rotation-max-age",
            {"soc2": {"CC6.1"}, "iso27001": {"A.8.24"}, "gdpr": {"Art.32(1)(a)"}},
        ),
        (
            "access-review-recent",
            {"soc2": {"CC6.2", "CC6.3"}, "iso27001": {"A.5.18"}, "gdpr": {"Art.32"}},
        ),
        ("vulnerability-sla", {"soc2": {"CC7.1"}, "iso27001": {"A.8.8"}, "gdpr": {"Art.32(1)(d)"}}),
        (
            "policy-noncompliant-none",
            {"soc2": {"CC7.1", "CC8.1"}, "iso27001": {"A.8.9"}, "gdpr": {"Art.25", "Art.32"}},
        ),
    ],
)
def test_default_mappings_an_auditor_expects(check_id, expected):
    got = {f: set(m) for f, m in LIBRARY.checks[check_id].controls.items()}
    for framework, ids in expected.items():
        assert ids <= got[framework], (check_id, framework)


def test_retention_checks_cover_the_retention_controls():
    retention = [c for c in LIBRARY.checks.values() if c.kind == "azure.retention_setting"]
    mapped = {(f, i) for c in retention for f, m in c.controls.items() for i in m}
    for wanted in [
        ("soc2", "C1.2"),
        ("iso27001", "A.5.33"),
        ("iso27001", "A.8.10"),
        ("gdpr", "Art.5(1)(e)"),
        ("gdpr", "Art.17"),
    ]:
        assert wanted in mapped


def test_every_cel_rule_compiled_at_load():
    for check in LIBRARY.checks.values():
        if isinstance(check.rule, CelRule):
            assert check.id in LIBRARY.programs


def test_titles_are_short_summaries_not_pasted_text():
    for catalog in LIBRARY.catalogs.values():
        for control in catalog.controls:
            assert 3 < len(control.title) <= 120, control.id
