"""``gitleaks``: gitleaks reports, JSON (v8, and v7's lower-case legacy keys) or SARIF.

Every leak becomes a ``secret.finding``: rule, file, line, commit, date. The
secret itself never gets past the parser: ``Secret``, ``Match`` (v8),
``offender`` and ``line`` (v7, the source line) and SARIF ``snippet``s are
dropped from each item as it is read. Commit authors and e-mail addresses are
pseudonymized by the service like all personal data. gitleaks does not name
what it scanned; set the source's ``target`` (the repository) so findings stay
comparable across report files (default: the v7 ``repoURL``, else the file name).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from evidence.collectors.files._normalize import iso, obj, parse_loose_date, parse_time, text
from evidence.collectors.files._sarif import RESULTS, is_suppressed, sarif_records
from evidence.collectors.files._scan import (
    Item,
    ScanFile,
    ScanFileCollector,
    bounded_join,
    scan_context,
    scope_of,
)
from evidence.domain.observation import Observation
from evidence.errors import InputError


class GitleaksCollector(ScanFileCollector):
    kind: ClassVar[str] = "gitleaks"
    observation_kinds = ("secret.finding", "scan.report")
    streamed = frozenset({"item", RESULTS})
    secret_keys = frozenset({"Secret", "Match", "offender", "line", "snippet"})
    # Commit authors are people; the service pseudonymizes these keys' values.
    personal_keys = frozenset({"Author", "author", "authorName", "committer"})

    def build(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile
    ) -> Iterator[dict[str, Any]]:
        if isinstance(skeleton, dict) and "runs" in skeleton:
            yield from sarif_records(skeleton, items, file, self.options.target)
            return
        if not isinstance(skeleton, list):
            raise InputError(
                "a gitleaks report is an array of findings (or SARIF)", where=file.name
            )
        first = True
        scan: dict[str, Any] = {}
        for item in items:
            leak = item.value
            if not isinstance(leak, dict):
                raise InputError(f"finding {item.index} is not an object", where=file.name)
            if first:
                scan = self._scan(leak, file)
                yield {"type": "scan", "scan": scan, "metadata": {"format": "json"}}
                first = False
            yield {"type": "finding", "scan": scan, "finding": leak}
        if first:
            yield {"type": "scan", "scan": self._scan({}, file), "metadata": {"format": "json"}}

    def _scan(self, leak: dict[str, Any], file: ScanFile) -> dict[str, Any]:
        repo = text(leak.get("repoURL")) or (
            "" if text(leak.get("repo")) in ("", ".") else text(leak.get("repo"))
        )
        return scan_context(scanner="gitleaks", target=self.options.target or repo or file.name)

    def observe_finding(self, record: dict[str, Any]) -> Observation:
        scan, leak = record["scan"], record["finding"]
        if "location" in record:  # SARIF
            location = record["location"]
            prints = obj(leak.get("partialFingerprints"))
            rule, path, line = text(leak.get("ruleId")), location["uri"], location["line"]
            commit, date = text(prints.get("commitSha")), prints.get("date")
            suppressed = is_suppressed(leak)
        else:
            rule = text(leak.get("RuleID")) or text(leak.get("rule"))
            path = text(leak.get("File")) or text(leak.get("file"))
            line = leak.get("StartLine", leak.get("lineNumber"))
            commit = text(leak.get("Commit")) or text(leak.get("commit"))
            date = leak.get("Date", leak.get("date"))
            suppressed = False
        line = line if isinstance(line, int) and not isinstance(line, bool) else None
        attrs = {
            "scanner": scan["scanner"],
            "scanner_version": scan["scanner_version"],
            "target": scan["target"],
            "rule": rule,
            "file": path,
            "line": line,
            "commit": commit,
            "date": iso(parse_loose_date(date)),
            "suppressed": suppressed,
        }
        subject = bounded_join([scan["target"], rule, path, text(line), commit])
        return Observation(
            "secret.finding",
            subject,
            attrs,
            parse_time(scan["generated_at"]),
            scope_of(scan),
        )
