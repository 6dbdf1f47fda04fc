"""``trivy``: Trivy JSON reports (``trivy image|fs|repo --format json``).

Reads schema version 2 reports, the pre-0.20 legacy format (a top-level array
of results) and the legacy ``null`` document ("nothing found"). Vulnerabilities
and misconfigurations become ``vulnerability.finding``s, secrets become
``secret.finding``s (the matched text and code context are dropped before
anything is written), findings a VEX statement modified
(``ExperimentalModifiedFindings``) are kept as suppressed. Failed
misconfiguration checks only: a ``PASS`` is not a finding.

Target: ``ArtifactName`` (an image reference, a repository, a path); findings
in language lock files or config files add ``#<file>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from evidence.collectors.files._normalize import (
    arr,
    fix_state,
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

_KINDS = {
    "Vulnerabilities": "vulnerability",
    "Misconfigurations": "misconfiguration",
    "Secrets": "secret",
}


class TrivyCollector(ScanFileCollector):
    kind: ClassVar[str] = "trivy"
    observation_kinds = ("vulnerability.finding", "secret.finding", "scan.report")
    streamed = frozenset(
        {
            f"Results.item.{key}.item"
            for key in (*_KINDS, "ExperimentalModifiedFindings", "Packages")
        }
        | {"item.Vulnerabilities.item"}
    )
    secret_keys = frozenset({"Match", "Code", "Secret"})

    def keep(self, prefix: str, value: Any) -> Any:
        if prefix.endswith(".Packages.item"):
            return None  # the package inventory is not a finding, and can be large
        return value

    def build(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile
    ) -> Iterator[dict[str, Any]]:
        if skeleton is None:  # legacy Trivy printed `null` when it found nothing
            scan = scan_context(scanner="trivy", target=self.options.target or file.name)
            yield {"type": "scan", "scan": scan, "metadata": {"document": None}}
            return
        if isinstance(skeleton, list):
            results, scan, metadata = skeleton, self._legacy_scan(file), {"format": "legacy-array"}
        elif isinstance(skeleton, dict):
            if not {"SchemaVersion", "Results", "ArtifactName"} & skeleton.keys():
                raise InputError(
                    "not a Trivy report (no SchemaVersion, ArtifactName or Results)",
                    where=file.name,
                )
            results = as_list(skeleton.get("Results"), "Results", file)
            scan = self._scan(skeleton, file)
            metadata = {k: v for k, v in skeleton.items() if k != "Results"}
        else:
            raise InputError("a Trivy report is an object, an array or null", where=file.name)
        for number, result in enumerate(results):
            if not isinstance(result, dict):
                raise InputError(f"Results[{number}] is not an object", where=file.name)
            for key in (*_KINDS, "ExperimentalModifiedFindings"):
                # A findings list that is not a list must not read as "nothing found".
                as_list(result.get(key), f"Results[{number}].{key}", file)
        yield {"type": "scan", "scan": scan, "metadata": metadata}
        for item in items:
            result = results[item.where[0]] if item.where and item.where[0] < len(results) else None
            if not isinstance(result, dict):
                raise InputError(f"Results[{item.where}] is not an object", where=file.name)
            finding = item.value
            if not isinstance(finding, dict):
                raise InputError(
                    f"a finding in Results[{item.where[0]}] is not an object", where=file.name
                )
            key = item.prefix.split(".")[-2]
            context = {k: result.get(k) for k in ("Target", "Class", "Type") if k in result}
            record: dict[str, Any] = {"type": "finding", "scan": scan, "result": context}
            if key == "ExperimentalModifiedFindings":
                inner = as_dict(
                    finding.get("Finding"), "ExperimentalModifiedFindings[].Finding", file
                )
                record["class"] = _modified_class(finding.get("Type"))
                record["finding"] = inner
                record["suppression"] = {k: v for k, v in finding.items() if k != "Finding"}
            else:
                if key == "Misconfigurations" and text(finding.get("Status")).upper() == "PASS":
                    continue
                record["class"] = _KINDS[key]
                record["finding"] = finding
            yield record

    def _scan(self, doc: dict[str, Any], file: ScanFile) -> dict[str, Any]:
        trivy = as_dict(doc.get("Trivy"), "Trivy", file)
        meta = as_dict(doc.get("Metadata"), "Metadata", file)
        digests = arr(meta.get("RepoDigests"))
        digest = next((d.split("@", 1)[1] for d in digests if isinstance(d, str) and "@" in d), "")
        return scan_context(
            scanner="trivy",
            scanner_version=text(trivy.get("Version")),
            target=self.options.target or text(doc.get("ArtifactName")) or file.name,
            artifact_digest=digest
            or text(meta.get("ImageID"))
            or text(meta.get("Commit"))
            or text(doc.get("ArtifactID")),
            generated_at=_iso(doc.get("CreatedAt")),
        )

    def _legacy_scan(self, file: ScanFile) -> dict[str, Any]:
        return scan_context(scanner="trivy", target=self.options.target or file.name)

    def observe_finding(self, record: dict[str, Any]) -> Observation:
        scan, finding, result = record["scan"], record["finding"], record["result"]
        observed_at = parse_time(scan["generated_at"])
        suppressed = "suppression" in record
        where = _finding_target(scan["target"], result)
        if record["class"] == "secret":
            line = finding.get("StartLine")
            attrs = {
                "scanner": scan["scanner"],
                "scanner_version": scan["scanner_version"],
                "target": scan["target"],
                "rule": text(finding.get("RuleID")),
                "file": text(result.get("Target")),
                "line": line if isinstance(line, int) else None,
                "commit": "",
                "date": None,
                "suppressed": suppressed,
            }
            subject = bounded_join([scan["target"], attrs["rule"], attrs["file"], text(line), ""])
            return Observation("secret.finding", subject, attrs, observed_at, _scope(scan))
        if record["class"] == "misconfiguration":
            vuln_id = text(finding.get("ID")) or text(finding.get("AVDID"))
            package, installed, fixed, state = "", "", "", "unknown"
            if suppressed:
                state = fix_state(record["suppression"].get("Status"))
        else:
            vuln_id = text(finding.get("VulnerabilityID"))
            package = text(finding.get("PkgName"))
            installed = text(finding.get("InstalledVersion"))
            fixed = text(finding.get("FixedVersion"))
            state = fix_state(finding.get("Status"), fixed)
            if suppressed:
                state = fix_state(record["suppression"].get("Status"), fixed)
        raw_severity = text(finding.get("Severity"))
        attrs = {
            "scanner": scan["scanner"],
            "scanner_version": scan["scanner_version"],
            "db_version": scan["db_version"],
            "target": where,
            "artifact_digest": scan["artifact_digest"],
            "vulnerability_id": vuln_id,
            "package": package,
            "installed_version": installed,
            "fixed_version": fixed,
            "severity": severity_from_label(raw_severity),
            "scanner_severity": raw_severity,
            "fix_state": state,
            "suppressed": suppressed,
            "location": text(result.get("Target")),
        }
        subject = bounded_join([where, vuln_id, package, installed])
        return Observation("vulnerability.finding", subject, attrs, observed_at, _scope(scan))


def _modified_class(kind: Any) -> str:
    value = text(kind).lower()
    return {"secret": "secret", "misconfiguration": "misconfiguration"}.get(value, "vulnerability")


def _finding_target(artifact: str, result: dict[str, Any]) -> str:
    """The artifact for OS packages; artifact#file for lock files, configs, legacy results."""
    inner = text(result.get("Target"))
    if result.get("Class") == "os-pkgs" or not inner or inner == artifact:
        return artifact
    return f"{artifact}#{inner}"


def _scope(scan: dict[str, Any]) -> str:
    return scope_of(scan)


def _iso(value: Any) -> str | None:
    moment = parse_time(value)
    return moment.isoformat().replace("+00:00", "Z") if moment else None
