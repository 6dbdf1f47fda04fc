"""How each rule kind judges one observation, and CEL compilation for custom rules.

Every judgement is ``Verdict(ok, reason)``. A field that is missing or of the
wrong type fails the subject with a reason that says so: the evidence does not
show the control working, and silence is never a pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import cel

from evidence.assessment.models import (
    AllowedValues,
    CelRule,
    MaxAge,
    MaxFailing,
    MaxValue,
    MinValue,
    OpenFindingsSla,
)

CEL_VARIABLES = frozenset({"subject", "scope", "source", "attributes", "observed_at", "as_of"})
# Names a comprehension macro binds (``list.all(x, ...)``) are variables to CEL's parser too.
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""


PASS = Verdict(True)


class Fact(Protocol):
    """What a rule sees of one observation (an observations row is one)."""

    @property
    def source(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def attributes(self) -> dict[str, Any]: ...
    @property
    def observed_at(self) -> datetime | None: ...


def field_value(fact: Fact, path: str) -> Any:
    """The value at ``path`` (dotted into attributes), or ``_MISSING``."""
    if path[0] == "@":
        if path == "@observed_at":
            return fact.observed_at if fact.observed_at is not None else _MISSING
        if path == "@subject":
            return fact.subject
        if path == "@source":
            return fact.source
        return fact.scope
    if "." not in path:
        return fact.attributes.get(path, _MISSING)
    node: Any = fact.attributes
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def value_key(value: Any) -> tuple[str, Any] | None:
    """JSON equality as a hashable key: ``true`` is not ``1``, ``7`` is ``7.0``; lists and
    objects never equal a listed scalar."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value)
    return None


def value_keys(values: Iterable[Any]) -> frozenset[tuple[str, Any] | None]:
    return frozenset(value_key(v) for v in values) - {None}


class Selector:
    """A check's ``where``: every named field equals the value (or one of the list)."""

    def __init__(self, where: dict[str, Any]) -> None:
        self.items = [
            (path, value_keys(wanted if isinstance(wanted, list) else [wanted]))
            for path, wanted in where.items()
        ]

    def __call__(self, fact: Fact) -> bool:
        for path, keys in self.items:
            value = field_value(fact, path)
            if value is _MISSING or value_key(value) not in keys:
                return False
        return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from an ISO 8601 string with a zone (or a datetime), else None."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _missing(path: str) -> Verdict:
    return Verdict(False, f"{path} is missing")


def judge_max_age(rule: MaxAge, fact: Fact, as_of: datetime) -> Verdict:
    raw = field_value(fact, rule.field)
    if raw is _MISSING or raw is None:
        return _missing(rule.field)
    moment = parse_time(raw)
    if moment is None:
        return Verdict(False, f"{rule.field} is not a time with a zone: {raw!r}")
    if as_of - moment > timedelta(days=rule.max_days):
        return Verdict(
            False, f"{rule.field} {moment.isoformat()} is older than {rule.max_days:g} days"
        )
    return PASS


def _number(rule_field: str, fact: Fact) -> float | Verdict:
    raw = field_value(fact, rule_field)
    if raw is _MISSING or raw is None:
        return _missing(rule_field)
    if not _is_number(raw) or (isinstance(raw, float) and math.isnan(raw)):
        return Verdict(False, f"{rule_field} is not a number: {raw!r}")
    return float(raw)


def judge_min_value(rule: MinValue, fact: Fact) -> Verdict:
    value = _number(rule.field, fact)
    if isinstance(value, Verdict):
        return value
    return (
        PASS
        if value >= rule.min
        else Verdict(False, f"{rule.field} {value:g} is below {rule.min:g}")
    )


def judge_max_value(rule: MaxValue, fact: Fact) -> Verdict:
    value = _number(rule.field, fact)
    if isinstance(value, Verdict):
        return value
    return (
        PASS
        if value <= rule.max
        else Verdict(False, f"{rule.field} {value:g} is above {rule.max:g}")
    )


def judge_allowed(rule: AllowedValues, fact: Fact, keys: frozenset[Any] | None = None) -> Verdict:
    raw = field_value(fact, rule.field)
    if raw is _MISSING:
        return _missing(rule.field)
    if value_key(raw) in (keys if keys is not None else value_keys(rule.allowed)):
        return PASS
    return Verdict(False, f"{rule.field} is {raw!r}, allowed {rule.allowed!r}")


def judge_failing_value(
    rule: MaxFailing, fact: Fact, keys: frozenset[Any] | None = None
) -> Verdict:
    raw = field_value(fact, rule.field)
    if raw is _MISSING:
        return _missing(rule.field)
    if value_key(raw) in (keys if keys is not None else value_keys(rule.failing_values)):
        return Verdict(False, f"{rule.field} is {raw!r}")
    return PASS


def judge_sla(rule: OpenFindingsSla, fact: Fact, first_seen: datetime, as_of: datetime) -> Verdict:
    raw = field_value(fact, rule.severity_field)
    if raw is _MISSING or raw is None:
        return _missing(rule.severity_field)
    if not isinstance(raw, str):
        return Verdict(False, f"{rule.severity_field} is not text: {raw!r}")
    limit = rule.max_days.get(raw.lower())
    if limit is None:
        return PASS  # no SLA promised for this severity
    if as_of - first_seen > timedelta(days=limit):
        return Verdict(
            False, f"{raw.lower()} finding open since {first_seen.isoformat()}, over {limit:g} days"
        )
    return PASS


# ---- CEL -----------------------------------------------------------------------------
def compile_cel(expression: str) -> Any:
    """Compile ``expression``; raise ``ValueError`` saying what is wrong with it."""
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(f"CEL does not parse: {exc}") from None
    bound = set(_MACRO_BINDING.findall(expression))
    unknown = sorted(set(program.variables()) - CEL_VARIABLES - bound)
    if unknown:
        known = ", ".join(sorted(CEL_VARIABLES))
        raise ValueError(f"CEL names unknown variable(s) {', '.join(unknown)} (known: {known})")
    return program


_ATTRIBUTE_USE = re.compile(r"\battributes\b(\s*\.\s*([A-Za-z_]\w*)(\s*\()?)?")


def cel_attribute_keys(expression: str) -> frozenset[str] | None:
    """The top-level attribute names an expression reads when it only ever reads
    ``attributes.<name>``; None when it uses ``attributes`` whole (indexing, size, ...).
    Converting a whole record into CEL values for every call is most of the cost."""
    keys = set()
    for match in _ATTRIBUTE_USE.finditer(expression):
        if match.group(2) is None or match.group(3):  # whole map, or a macro over it
            return None
        keys.add(match.group(2))
    return frozenset(keys)


def cel_names(program: Any) -> frozenset[str]:
    """The context variables ``program`` reads: only those are converted for each call."""
    return frozenset(program.variables()) & CEL_VARIABLES


def judge_cel(
    rule: CelRule,
    program: Any,
    fact: Fact,
    as_of: datetime,
    names: frozenset[str] = CEL_VARIABLES,
    attribute_keys: frozenset[str] | None = None,
) -> Verdict:
    attributes = fact.attributes
    if attribute_keys is not None:
        attributes = {k: attributes[k] for k in attribute_keys if k in attributes}
    every = {
        "subject": fact.subject,
        "scope": fact.scope,
        "source": fact.source,
        "attributes": attributes,
        "observed_at": fact.observed_at,
        "as_of": as_of,
    }
    context = {name: every[name] for name in names}
    try:
        result = program.execute(context)
    except KeyError as exc:
        return Verdict(False, f"expression reads a missing field {exc}")
    except Exception as exc:  # the expression is the operator's, the data anyone's: never a crash
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return Verdict(False, f"expression failed: {text}")
    if result is True:
        return PASS
    if result is False:
        return Verdict(False, "expression is false")
    return Verdict(False, f"expression gave {result!r}, not true or false")
