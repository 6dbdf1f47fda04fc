"""Load and validate the control library: catalogs, crosswalk and checks from YAML.

``load_library(folder, extra_checks=[])`` reads ``frameworks/*.yaml``,
``crosswalk.yaml`` and ``checks/*.yaml`` and returns a ``Library``, or raises
``CatalogError`` naming the file and the key. Nothing here touches a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from evidence.assessment._yaml import read_yaml
from evidence.assessment.models import (
    FRAMEWORKS,
    Catalog,
    CelRule,
    Check,
    CheckFile,
    Control,
    Crosswalk,
    OpenFindingsSla,
    Relation,
)
from evidence.assessment.rules import compile_cel
from evidence.domain.kinds import KINDS
from evidence.errors import CatalogError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Library:
    catalogs: dict[str, Catalog]
    checks: dict[str, Check]
    relations: tuple[Relation, ...]
    digest: str  # sha256 of everything loaded, recorded with each finding
    check_files: dict[str, str] = field(default_factory=dict)  # check id -> file it came from
    programs: dict[str, Any] = field(default_factory=dict)  # check id -> compiled CEL

    def control(self, framework: str, control_id: str) -> Control | None:
        catalog = self.catalogs.get(framework)
        if catalog is None:
            return None
        for control in catalog.controls:
            if control.id == control_id:
                return control
        return None

    def checks_by_kind(self) -> dict[str, list[Check]]:
        grouped: dict[str, list[Check]] = {}
        for check in self.checks.values():
            grouped.setdefault(check.kind, []).append(check)
        return grouped


def builtin_controls() -> Path:
    """The controls folder shipped inside the package."""
    return Path(str(resources.files("evidence") / "controls"))


def load_library(folder: Path | None = None, extra_checks: Iterable[Path] = ()) -> Library:
    """Read and cross-check every file; raise ``CatalogError`` at the first problem."""
    root = folder or builtin_controls()
    if not (root / "frameworks").is_dir():
        raise CatalogError("no frameworks/ folder here", where=str(root))
    hasher = hashlib.sha256()
    catalogs: dict[str, Catalog] = {}
    for path in sorted((root / "frameworks").glob("*.yaml")):
        catalog = _parse(path, Catalog, hasher)
        if catalog.framework in catalogs:
            raise CatalogError(
                f"framework {catalog.framework} is defined twice", where=f"{path}: framework"
            )
        _unique_controls(path, catalog)
        catalogs[catalog.framework] = catalog
    missing = [f for f in FRAMEWORKS if f not in catalogs]
    if missing:
        raise CatalogError(
            f"no catalog for framework(s) {', '.join(missing)}", where=str(root / "frameworks")
        )
    known = {f: {c.id for c in cat.controls} for f, cat in catalogs.items()}
    for framework, catalog in catalogs.items():
        for i, control in enumerate(catalog.controls):
            if control.parent and control.parent not in known[framework]:
                raise CatalogError(
                    f"parent {control.parent} is not a control of {framework}",
                    where=f"{root / 'frameworks'}: controls[{i}]({control.id}).parent",
                )
    relations: tuple[Relation, ...] = ()
    crosswalk_path = root / "crosswalk.yaml"
    if crosswalk_path.exists():
        crosswalk = _parse(crosswalk_path, Crosswalk, hasher)
        for i, rel in enumerate(crosswalk.relations):
            for side in ("a", "b"):
                framework, _, control_id = getattr(rel, side).partition(":")
                if control_id not in known[framework]:
                    raise CatalogError(
                        f"{control_id} is not a control of {framework}",
                        where=f"{crosswalk_path}: relations[{i}].{side}",
                    )
        relations = tuple(crosswalk.relations)
    checks: dict[str, Check] = {}
    files: dict[str, str] = {}
    programs: dict[str, Any] = {}
    folders = [root / "checks", *extra_checks]
    for check_folder in folders:
        if not check_folder.is_dir():
            raise CatalogError("checks folder not found", where=str(check_folder))
        for path in sorted(check_folder.glob("*.yaml")):
            parsed = _parse(path, CheckFile, hasher)
            for i, check in enumerate(parsed.checks):
                where = f"{path}: checks[{i}]({check.id})"
                if check.id in checks:
                    raise CatalogError(
                        f"duplicate check id {check.id} (first in {files[check.id]})",
                        where=f"{where}.id",
                    )
                _check_refs(check, known, where)
                if isinstance(check.rule, CelRule):
                    try:
                        programs[check.id] = compile_cel(check.rule.expression)
                    except ValueError as exc:
                        raise CatalogError(str(exc), where=f"{where}.rule.expression") from None
                checks[check.id] = check
                files[check.id] = str(path)
    return Library(
        catalogs=catalogs,
        checks=checks,
        relations=relations,
        digest="sha256:" + hasher.hexdigest(),
        check_files=files,
        programs=programs,
    )


def _parse(path: Path, model: type[M], hasher: Any) -> M:
    raw = read_yaml(path)
    hasher.update(
        path.name.encode() + b"\0" + json.dumps(raw, sort_keys=True, default=str).encode()
    )
    if not isinstance(raw, dict):
        raise CatalogError("expected a mapping at the top", where=str(path))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_describe(exc, raw), where=str(path)) from None


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for err in exc.errors():
        key = _dotted(list(err["loc"]), raw)
        message = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(
            err["type"], err["msg"]
        )
        lines.append(f"{key}: {message}")
    return "; ".join(lines)


def _dotted(loc: list[Any], raw: dict[str, Any]) -> str:
    """``checks[2](key-rotation-max-age).rule.max_dayz``: list items show their id."""
    parts: list[str] = []
    node: Any = raw
    rule_tags = {
        "max_age",
        "min_value",
        "max_value",
        "allowed_values",
        "max_failing",
        "open_findings_sla",
        "cel",
    }
    for item in loc:
        if isinstance(item, int):
            ident = None
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                ident = node[item].get("id")
            text = f"[{item}]" + (f"({ident})" if ident else "")
            if parts:
                parts[-1] += text
            else:
                parts.append(text)
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        elif parts and parts[-1] == "rule" and item in rule_tags:
            continue  # pydantic's union tag, not a key in the file
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _unique_controls(path: Path, catalog: Catalog) -> None:
    seen: set[str] = set()
    for i, control in enumerate(catalog.controls):
        if control.id in seen:
            raise CatalogError(
                f"duplicate control id {control.id}", where=f"{path}: controls[{i}].id"
            )
        seen.add(control.id)


def _check_refs(check: Check, known: dict[str, set[str]], where: str) -> None:
    kind = KINDS.get(check.kind)
    if kind is None and not check.custom_kind:
        raise CatalogError(
            f"unknown observation kind {check.kind!r} (set custom_kind: true for an "
            "import.json observation_kind)",
            where=f"{where}.kind",
        )
    for framework, mapping in check.controls.items():
        for control_id in mapping:
            if control_id not in known[framework]:
                raise CatalogError(
                    f"{control_id} is not a control of {framework}",
                    where=f"{where}.controls.{framework}.{control_id}",
                )
    if kind is None or not kind.attributes:
        return  # free-form attributes: nothing to check names against
    names = [*check.where]
    rule = check.rule
    if isinstance(rule, OpenFindingsSla):
        names.append(rule.severity_field)
    elif not isinstance(rule, CelRule):
        names.append(rule.field)
    for name in names:
        top = name.split(".")[0]
        if not name.startswith("@") and top not in kind.attributes:
            raise CatalogError(
                f"{check.kind} has no attribute {top!r} (has: {', '.join(kind.attributes)})",
                where=f"{where}.rule" if name not in check.where else f"{where}.where.{name}",
            )
