"""One scale for what every scanner says: severities, fix states, times.

Severity: ``critical, high, medium, low, negligible, unknown``. The scanner's
own word (or score) is kept beside it in ``scanner_severity``. Fix state:
``fixed`` (a fixed version exists), ``not-fixed`` (affected, no fix yet),
``wont-fix`` (the vendor will not fix: will_not_fix, end_of_life),
``not-affected`` (a VEX statement says so), ``unknown``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")

_LABELS = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "error": "high",
    "medium": "medium",
    "moderate": "medium",
    "warning": "medium",
    "low": "low",
    "note": "low",
    "recommendation": "low",
    "negligible": "negligible",
    "info": "negligible",
    "informational": "negligible",
    "none": "negligible",
}

_FIX_STATES = {
    "fixed": "fixed",
    "affected": "not-fixed",
    "not-fixed": "not-fixed",
    "fix_deferred": "not-fixed",
    "fix-deferred": "not-fixed",
    "under_investigation": "not-fixed",
    "will_not_fix": "wont-fix",
    "wont-fix": "wont-fix",
    "end_of_life": "wont-fix",
    "not_affected": "not-affected",
    "not-affected": "not-affected",
}


def severity_from_label(label: Any) -> str:
    """``HIGH``, ``High``, ``moderate``, SARIF ``error`` ... -> the common scale."""
    if not isinstance(label, str):
        return "unknown"
    return _LABELS.get(label.strip().lower(), "unknown")


def severity_from_score(score: Any) -> str:
    """A CVSS-style 0-10 score (SARIF ``security-severity``) -> the common scale."""
    try:
        value = float(score)
    except (TypeError, ValueError):
        return "unknown"
    if not 0.0 <= value <= 10.0:
        return "unknown"
    if value >= 9.0:
        return "critical"
    if value >= 7.0:
        return "high"
    if value >= 4.0:
        return "medium"
    if value >= 0.1:
        return "low"
    return "negligible"


def fix_state(raw: Any, fixed_version: str = "") -> str:
    """A scanner's fix status (or none) -> the common fix states."""
    if isinstance(raw, str) and raw.strip():
        return _FIX_STATES.get(raw.strip().lower(), "unknown")
    return "fixed" if fixed_version else "unknown"


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset, as aware UTC; None when absent or unreadable.
    Nanosecond fractions (Trivy) are cut to microseconds; a time without an
    offset is not guessed at."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.utcoffset() is None or moment.year < 1970:
        return None
    return moment.astimezone(UTC)


_US_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")


def parse_loose_date(value: Any) -> datetime | None:
    """ISO 8601, or gitleaks' ``MM-DD-YYYY`` (taken as midnight UTC)."""
    moment = parse_time(value)
    if moment is not None or not isinstance(value, str):
        return moment
    match = _US_DATE.match(value.strip())
    if not match:
        return None
    month, day, year = (int(g) for g in match.groups())
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def text(value: Any) -> str:
    """A string attribute: strings as they are, numbers as text, anything else ''."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one (for optional parts)."""
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    """``value`` when it is an array, else an empty one (for optional parts)."""
    return value if isinstance(value, list) else []
