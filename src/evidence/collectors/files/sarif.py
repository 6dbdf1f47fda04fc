"""``sarif``: SARIF 2.1.0 logs from any static analyser (CodeQL, Semgrep, ...).

Every result of every run becomes a ``vulnerability.finding`` (see ``_sarif``
for how rules, levels and suppressions are read). For code findings the
``package`` is the file the result points at and ``installed_version`` is
empty; the subject is ``target|scanner:rule|file|...``, ending with GitHub's
line hash when the tool gives one, else ``L<line>``, so a finding keeps its
identity while the code around it moves.
A log with no runs is still a report (of nothing, by an unknown scanner).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from evidence.collectors.files._normalize import parse_time, text
from evidence.collectors.files._sarif import (
    RESULTS,
    fingerprint,
    is_suppressed,
    level_and_severity,
    sarif_records,
)
from evidence.collectors.files._scan import (
    Item,
    ScanFile,
    ScanFileCollector,
    bounded_join,
    scope_of,
)
from evidence.domain.observation import Observation


class SarifCollector(ScanFileCollector):
    kind: ClassVar[str] = "sarif"
    observation_kinds = ("vulnerability.finding", "scan.report")
    streamed = frozenset({RESULTS})
    secret_keys = frozenset({"snippet"})

    def build(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile
    ) -> Iterator[dict[str, Any]]:
        yield from sarif_records(skeleton, items, file, self.options.target)

    def observe_finding(self, record: dict[str, Any]) -> Observation:
        scan, result, location = record["scan"], record["finding"], record["location"]
        rule_id = text(result.get("ruleId")) or text((record.get("rule") or {}).get("id"))
        _level, severity, raw = level_and_severity(record)
        uri, line = location["uri"], location["line"]
        where = f"{uri}:{line}" if uri and line is not None else uri
        attrs = {
            "scanner": scan["scanner"],
            "scanner_version": scan["scanner_version"],
            "db_version": scan["db_version"],
            "target": scan["target"],
            "artifact_digest": scan["artifact_digest"],
            "vulnerability_id": rule_id,
            "package": uri,
            "installed_version": "",
            "fixed_version": "",
            "severity": severity,
            "scanner_severity": raw,
            "fix_state": "unknown",
            "suppressed": is_suppressed(result),
            "location": where,
        }
        tail = fingerprint(result) or (f"L{line}" if line is not None else "")
        # The scanner is part of the rule: one log may hold runs of several tools.
        subject = bounded_join([scan["target"], f"{scan['scanner']}:{rule_id}", uri, tail])
        return Observation(
            "vulnerability.finding",
            subject,
            attrs,
            parse_time(scan["generated_at"]),
            scope_of(scan),
        )
