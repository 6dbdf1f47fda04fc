"""The control library fails to load, naming the file and the key, for each kind of mistake;
and a broken operator folder stops the command line with exit 2 and no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evidence.assessment import builtin_controls, load_library
from evidence.errors import CatalogError


@pytest.fixture
def controls(tmp_path: Path) -> Path:
    target = tmp_path / "controls"
    shutil.copytree(builtin_controls(), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def fails(folder: Path, *expected: str, extra: list[Path] | None = None) -> str:
    with pytest.raises(CatalogError) as caught:
        load_library(folder, extra or [])
    message = str(caught.value)
    for part in expected:
        assert part in message, message
    return message


def test_the_shipped_library_loads(controls):
    library = load_library(controls)
    assert library.digest == load_library().digest  # the copy is byte-for-byte the same data


def test_duplicate_control_id(controls):
    path = controls / "frameworks" / "soc2.yaml"
    edit(path, "{id: CC1.2,", "{id: CC1.1,")
    fails(controls, "soc2.yaml", "controls[1].id", "duplicate control id CC1.1")


def test_duplicate_check_id_across_files(controls):
    path = controls / "checks" / "defender.yaml"
    edit(path, "id: defender-unhealthy-sla", "id: key-rotation-max-age")
    fails(controls, "defender.yaml", "checks[0](key-rotation-max-age).id", "duplicate check id")


def test_mapping_to_a_missing_control(controls):
    path = controls / "checks" / "azure-keys.yaml"
    edit(path, "iso27001: {A.8.24:", "iso27001: {A.8.99:")
    fails(
        controls,
        "azure-keys.yaml",
        "checks[0](key-rotation-max-age).controls.iso27001.A.8.99",
        "not a control of iso27001",
    )


def test_unknown_rule_parameter(controls):
    path = controls / "checks" / "azure-keys.yaml"
    edit(path, "max_days: 365}", "max_dayz: 365}")
    message = fails(controls, "azure-keys.yaml", "checks[0](key-rotation-max-age).rule.max_dayz")
    assert "unknown key" in message


def test_unknown_rule_type(controls):
    edit(controls / "checks" / "azure-keys.yaml", "type: max_age", "type: maximum_age")
    fails(controls, "azure-keys.yaml", "checks[0](key-rotation-max-age).rule")


def test_bad_cel_expression(controls):
    edit(
        controls / "checks" / "azure-keys.yaml",
        "attributes.rotation_policy != null &&",
        "attributes.rotation_policy != &&",
    )
    fails(
        controls,
        "azure-keys.yaml",
        "checks[1](key-rotation-policy-set).rule.expression",
        "CEL does not parse",
    )


def test_cel_naming_an_unknown_variable(controls):
    edit(
        controls / "checks" / "azure-keys.yaml",
        "attributes.rotation_policy != null &&",
        "attrs.rotation_policy != null &&",
    )
    fails(controls, "rule.expression", "unknown variable(s) attrs")


def test_unknown_observation_kind(controls):
    edit(
        controls / "checks" / "defender.yaml",
        "kind: defender.assessment",
        "kind: defender.assesment",
    )
    fails(
        controls,
        "defender.yaml",
        "checks[0](defender-unhealthy-sla).kind",
        "unknown observation kind",
    )


def test_attribute_the_kind_does_not_have(controls):
    edit(
        controls / "checks" / "azure-keys.yaml", "field: current_created", "field: current_creation"
    )
    fails(
        controls,
        "azure-keys.yaml",
        "checks[0](key-rotation-max-age).rule",
        "no attribute 'current_creation'",
    )


def test_duplicate_yaml_key(controls):
    edit(
        controls / "checks" / "azure-keys.yaml",
        "    ttl_days: 7\n",
        "    ttl_days: 7\n    ttl_days: 8\n",
    )
    fails(controls, "azure-keys.yaml", "duplicate key 'ttl_days'")


def test_crosswalk_to_a_missing_control(controls):
    edit(controls / "crosswalk.yaml", 'b: "iso27001:A.8.24"', 'b: "iso27001:A.9.1"')
    fails(controls, "crosswalk.yaml", "relations[0].b", "A.9.1 is not a control of iso27001")


def test_crosswalk_unknown_relation(controls):
    edit(controls / "crosswalk.yaml", "relation: intersects", "relation: overlaps")
    fails(controls, "crosswalk.yaml", "relations[0].relation")


def test_catalog_without_version(controls):
    edit(controls / "frameworks" / "gdpr.yaml", "version:", "edition:")
    fails(controls, "gdpr.yaml", "version: required key is missing", "edition: unknown key")


def test_not_yaml(controls):
    (controls / "checks" / "broken.yaml").write_text("checks: [\n")
    fails(controls, "broken.yaml", "not valid YAML")


def test_extra_checks_folder_is_validated_too(controls, tmp_path):
    extra = tmp_path / "mine"
    extra.mkdir()
    (extra / "mine.yaml").write_text(
        "checks:\n"
        "  - id: training\n    title: t\n    kind: training.completion\n"
        "    rule: {type: min_value, field: pct, min: 95}\n"
        "    ttl_days: 30\n    severity: low\n    controls: {iso27001: {A.6.3: why}}\n"
    )
    fails(controls, "mine.yaml", "checks[0](training).kind", extra=[extra])
    text = (
        (extra / "mine.yaml")
        .read_text()
        .replace("kind: training.completion", "kind: training.completion\n    custom_kind: true")
    )
    (extra / "mine.yaml").write_text(text)
    library = load_library(controls, [extra])
    assert "training" in library.checks


def test_cli_stops_with_exit_2_on_a_broken_operator_folder(workspace, controls):
    edit(controls / "checks" / "azure-keys.yaml", "max_days: 365}", "max_dayz: 365}")
    workspace.extra_config = f'[assessment]\ncontrols_path = "{controls}"\n'
    workspace.write_config()
    result = workspace.cli("status", "--json")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "azure-keys.yaml" in result.err
    assert "rule.max_dayz" in result.err
    assert result.json()["error"]["code"] == "catalog-invalid"


def test_unknown_assessment_config_key_is_a_config_error(workspace):
    workspace.extra_config = '[assessment]\ncontrol_path = "x"\n'
    workspace.write_config()
    result = workspace.cli("status")
    assert result.code == 2
    assert "assessment.control_path: unknown key" in result.err
