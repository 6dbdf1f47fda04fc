"""The shapes of catalogs, crosswalks and checks, as pydantic models (unknown keys refused).

These validate one file at a time; ``library.load_library`` then checks what
spans files (ids unique, every mapped control exists, every crosswalk id exists).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FRAMEWORKS = ("soc2", "iso27001", "gdpr")
FrameworkId = Literal["soc2", "iso27001", "gdpr"]
Scalar = str | int | float | bool | None
SEVERITIES = ("critical", "high", "medium", "low")
_CHECK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_FIELD = re.compile(
    r"^(@observed_at|@subject|@source|@scope|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*)$"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- catalogs ------------------------------------------------------------------------
class Control(_Model):
    id: Annotated[str, Field(min_length=1, max_length=100)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    group: str = ""
    theme: str = ""  # ISO/IEC 27001:2022 Annex A themes
    parent: str = ""  # GDPR paragraphs name their article


class Catalog(_Model):
    framework: FrameworkId
    name: str
    version: Annotated[str, Field(min_length=1)]
    source: str = ""  # where the standard itself is published (we reference it, not copy it)
    controls: Annotated[list[Control], Field(min_length=1)]


class Relation(_Model):
    a: str
    b: str
    relation: Literal["equal", "subset", "superset", "intersects"]
    note: str = ""

    @field_validator("a", "b")
    @classmethod
    def _qualified(cls, value: str) -> str:
        framework, sep, control = value.partition(":")
        if not sep or framework not in FRAMEWORKS or not control:
            raise ValueError(
                "expected '<framework>:<control id>' with framework soc2, iso27001 or gdpr"
            )
        return value


class Crosswalk(_Model):
    version: Annotated[str, Field(min_length=1)]
    relations: list[Relation]


# ---- rules ---------------------------------------------------------------------------
def _field(value: str) -> str:
    if not _FIELD.match(value):
        raise ValueError(
            "expected an attribute name (dots for nesting), "
            "@observed_at, @subject, @source or @scope"
        )
    return value


Fieldname = Annotated[str, Field(min_length=1)]


class _Rule(_Model):
    @field_validator("field", check_fields=False)
    @classmethod
    def _field_ok(cls, value: str) -> str:
        return _field(value)


class MaxAge(_Rule):
    """The timestamp in ``field`` is at most ``max_days`` old at the assessment time.
    With ``group_by``, the subjects are the groups (e.g. a review definition), and each
    group's newest timestamp is judged: one recent instance is enough, old ones are history."""

    type: Literal["max_age"]
    field: Fieldname
    max_days: Annotated[float, Field(gt=0)]
    group_by: str = ""

    @field_validator("group_by")
    @classmethod
    def _group_ok(cls, value: str) -> str:
        return _field(value) if value else value


class MinValue(_Rule):
    """The number in ``field`` is at least ``min``."""

    type: Literal["min_value"]
    field: Fieldname
    min: float


class MaxValue(_Rule):
    """The number in ``field`` is at most ``max``."""

    type: Literal["max_value"]
    field: Fieldname
    max: float


class AllowedValues(_Rule):
    """The value in ``field`` is one of ``allowed`` (same type: ``true`` is not ``1``)."""

    type: Literal["allowed_values"]
    field: Fieldname
    allowed: Annotated[list[Scalar], Field(min_length=1)]


class MaxFailing(_Rule):
    """A subject fails when ``field`` is one of ``failing_values`` (or missing); the check
    passes while at most ``max_count`` subjects fail (exceptions not counted)."""

    type: Literal["max_failing"]
    field: Fieldname
    failing_values: Annotated[list[Scalar], Field(min_length=1)]
    max_count: Annotated[int, Field(ge=0)] = 0


class OpenFindingsSla(_Rule):
    """An open finding (an observation valid at the time) is older than the days allowed
    for its severity. Age counts from the start of the subject's continuous open history."""

    type: Literal["open_findings_sla"]
    severity_field: Fieldname = "severity"
    max_days: Annotated[dict[str, Annotated[float, Field(gt=0)]], Field(min_length=1)]

    @field_validator("severity_field")
    @classmethod
    def _severity_field_ok(cls, value: str) -> str:
        return _field(value)


class CelRule(_Model):
    """A CEL expression over ``subject``, ``scope``, ``source``, ``attributes``,
    ``observed_at`` (timestamp or null) and ``as_of`` (timestamp); true passes."""

    type: Literal["cel"]
    expression: Annotated[str, Field(min_length=1, max_length=4000)]


Rule = Annotated[
    MaxAge | MinValue | MaxValue | AllowedValues | MaxFailing | OpenFindingsSla | CelRule,
    Field(discriminator="type"),
]


# ---- checks --------------------------------------------------------------------------
class Check(_Model):
    id: str
    title: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Annotated[str, Field(min_length=1)]
    custom_kind: bool = (
        False  # a kind outside domain/kinds.py (e.g. import.json's observation_kind)
    )
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    rule: Rule
    ttl_days: Annotated[float, Field(gt=0)]
    severity: Literal["critical", "high", "medium", "low"]
    controls: dict[FrameworkId, dict[str, Annotated[str, Field(min_length=1)]]]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _CHECK_ID.match(value):
            raise ValueError("expected lower-case letters, digits, dots and dashes")
        return value

    @field_validator("controls")
    @classmethod
    def _some_control(
        cls, value: dict[FrameworkId, dict[str, str]]
    ) -> dict[FrameworkId, dict[str, str]]:
        if not any(value.values()):
            raise ValueError("a check must support at least one control")
        return value

    @field_validator("where")
    @classmethod
    def _where_fields(
        cls, value: dict[str, Scalar | list[Scalar]]
    ) -> dict[str, Scalar | list[Scalar]]:
        for name in value:
            _field(name)
        return value

    @property
    def needs_history(self) -> bool:
        return isinstance(self.rule, OpenFindingsSla)


class CheckFile(_Model):
    checks: Annotated[list[Check], Field(min_length=1)]
