"""``grype``: Grype JSON reports (``grype <target> -o json``), old and current schemas.

``matches[]`` become ``vulnerability.finding``s; ``ignoredMatches[]`` (matches
an ignore rule hid) are kept as suppressed findings. The vulnerability
database's build time (and schema) is the ``db_version``. Grype writes its
``source`` and ``descriptor`` after the matches; the streaming split does not
care about the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from evidence.collectors.files._normalize import (
    arr,
    fix_state,
    iso,
    obj,
    parse_time,
    severity_from_label,
    text,
)
from evidence.collectors.files._scan import (
    Item,
    ScanFile,
    ScanFileCollector,
    as_dict,
    as_list,
    bounded_join,
    scan_context,
    scope_of,
)
from evidence.domain.observation import Observation
from evidence.errors import InputError


class GrypeCollector(ScanFileCollector):
    kind: ClassVar[str] = "grype"
    observation_kinds = ("vulnerability.finding", "scan.report")
    streamed = frozenset({"matches.item", "ignoredMatches.item"})

    def build(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile
    ) -> Iterator[dict[str, Any]]:
        if not isinstance(skeleton, dict) or not isinstance(skeleton.get("matches"), list):
            raise InputError("a Grype report is an object with a 'matches' array", where=file.name)
        as_list(skeleton.get("ignoredMatches"), "ignoredMatches", file)
        scan = self._scan(skeleton, file)
        metadata = {k: v for k, v in skeleton.items() if k not in ("matches", "ignoredMatches")}
        yield {"type": "scan", "scan": scan, "metadata": metadata}
        for item in items:
            match = item.value
            if not isinstance(match, dict):
                raise InputError(
                    f"{item.prefix.split('.')[0]}[{item.index}] is not an object", where=file.name
                )
            as_dict(match.get("vulnerability"), "matches[].vulnerability", file)
            as_dict(match.get("artifact"), "matches[].artifact", file)
            record: dict[str, Any] = {"type": "finding", "scan": scan, "finding": match}
            if item.prefix.startswith("ignoredMatches"):
                record["suppression"] = {"appliedIgnoreRules": match.get("appliedIgnoreRules", [])}
            yield record

    def _scan(self, doc: dict[str, Any], file: ScanFile) -> dict[str, Any]:
        source = as_dict(doc.get("source"), "source", file)
        descriptor = as_dict(doc.get("descriptor"), "descriptor", file)
        raw_target = source.get("target")
        digest = ""
        if isinstance(raw_target, dict):
            target = text(raw_target.get("userInput"))
            repo_digests = raw_target.get("repoDigests")
            digest = text(raw_target.get("manifestDigest")) or text(raw_target.get("imageID"))
            if not digest and isinstance(repo_digests, list) and repo_digests:
                digest = text(repo_digests[0]).rpartition("@")[2]
        else:
            target = text(raw_target).strip('"')  # grype 0.2x quoted directory targets
        if target in ("", "unknown"):
            target = file.name
        return scan_context(
            scanner=text(descriptor.get("name")) or "grype",
            scanner_version=text(descriptor.get("version")),
            db_version=_db_version(descriptor.get("db")),
            target=self.options.target or target,
            artifact_digest=digest,
            generated_at=iso(parse_time(descriptor.get("timestamp"))),
        )

    def observe_finding(self, record: dict[str, Any]) -> Observation:
        scan, match = record["scan"], record["finding"]
        vuln = match.get("vulnerability") or {}
        artifact = match.get("artifact") or {}
        fix = obj(vuln.get("fix"))
        versions = arr(fix.get("versions"))
        fixed = ", ".join(text(v) for v in versions if text(v))
        raw_severity = text(vuln.get("severity"))
        attrs = {
            "scanner": scan["scanner"],
            "scanner_version": scan["scanner_version"],
            "db_version": scan["db_version"],
            "target": scan["target"],
            "artifact_digest": scan["artifact_digest"],
            "vulnerability_id": text(vuln.get("id")),
            "package": text(artifact.get("name")),
            "installed_version": text(artifact.get("version")),
            "fixed_version": fixed,
            "severity": severity_from_label(raw_severity),
            "scanner_severity": raw_severity,
            "fix_state": fix_state(fix.get("state"), fixed),
            "suppressed": "suppression" in record,
            "location": _first_path(artifact.get("locations")),
        }
        subject = bounded_join(
            [
                scan["target"],
                attrs["vulnerability_id"],
                attrs["package"],
                attrs["installed_version"],
            ]
        )
        return Observation(
            "vulnerability.finding",
            subject,
            attrs,
            parse_time(scan["generated_at"]),
            scope_of(scan),
        )


def _db_version(db: Any) -> str:
    """``<schema>@<built>`` from either descriptor.db shape (old: flat; new: db.status)."""
    if not isinstance(db, dict):
        return ""
    status = obj(db.get("status")) or db
    built = text(status.get("built")) or text(db.get("built"))
    schema = text(status.get("schemaVersion")) or text(db.get("schemaVersion"))
    return "@".join(p for p in (schema, built) if p)


def _first_path(locations: Any) -> str:
    if isinstance(locations, list) and locations and isinstance(locations[0], dict):
        return text(locations[0].get("path"))
    return ""
