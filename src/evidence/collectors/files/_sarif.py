"""Reading SARIF 2.1.0 logs: runs, their tools and rules, and results in context.

Shared by the ``sarif`` collector and ``gitleaks`` (which also writes SARIF).
Each run is one scan: ``tool.driver`` names the scanner, the first
``versionControlProvenance`` the target (repository) and its commit, the first
invocation the time. A result's rule is found by ``ruleIndex``, then by id, in
the driver or in the extension ``rule.toolComponent`` points at. Its level is
the result's own, else the rule's ``defaultConfiguration.level``, else
``warning`` (the SARIF default). Results of kind pass, informational and
notApplicable are not findings. ``snippet`` texts are dropped everywhere: they
can quote a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evidence.collectors.files._normalize import (
    arr,
    iso,
    obj,
    parse_time,
    severity_from_label,
    severity_from_score,
    text,
)
from evidence.collectors.files._scan import Item, ScanFile, as_dict, as_list, scan_context
from evidence.errors import InputError

RESULTS = "runs.item.results.item"
NOT_FINDINGS = frozenset({"pass", "informational", "notapplicable"})


def sarif_records(
    skeleton: Any, items: Iterator[Item], file: ScanFile, target: str
) -> Iterator[dict[str, Any]]:
    if not isinstance(skeleton, dict) or "runs" not in skeleton:
        raise InputError("a SARIF log is an object with a 'runs' array", where=file.name)
    if not isinstance(skeleton.get("runs"), list):
        raise InputError("'runs' is not an array", where=file.name)
    runs = skeleton["runs"]
    if not runs:
        scan = scan_context(scanner="unknown", target=target or file.name)
        yield {
            "type": "scan",
            "scan": scan,
            "metadata": {"version": skeleton.get("version"), "runs": 0},
        }
        return
    scans = []
    for index, run in enumerate(runs):
        run = as_dict(run, f"runs[{index}]", file)
        as_list(run.get("results"), f"runs[{index}].results", file)
        scan = _scan(run, file, target)
        scans.append(scan)
        yield {"type": "scan", "scan": scan, "metadata": _metadata(run, index)}
    for item in items:
        run_index = item.where[0]
        run = runs[run_index]
        result = item.value
        if not isinstance(result, dict):
            raise InputError(
                f"runs[{run_index}].results[{item.index}] is not an object", where=file.name
            )
        if text(result.get("kind")).lower() in NOT_FINDINGS:
            continue
        rule = find_rule(run, result)
        yield {
            "type": "finding",
            "scan": scans[run_index],
            "run": run_index,
            "rule": _rule_summary(rule),
            "location": primary_location(run, result),
            "finding": result,
        }


def _scan(run: dict[str, Any], file: ScanFile, target: str) -> dict[str, Any]:
    tool = obj(run.get("tool"))
    driver = obj(tool.get("driver"))
    provenance = run.get("versionControlProvenance")
    repo, commit = "", ""
    if isinstance(provenance, list) and provenance and isinstance(provenance[0], dict):
        repo = text(provenance[0].get("repositoryUri"))
        commit = text(provenance[0].get("revisionId"))
    invocations = run.get("invocations")
    when = None
    if isinstance(invocations, list) and invocations and isinstance(invocations[0], dict):
        first = invocations[0]
        when = parse_time(first.get("endTimeUtc")) or parse_time(first.get("startTimeUtc"))
    return scan_context(
        scanner=text(driver.get("name")) or "unknown",
        scanner_version=text(driver.get("version")) or text(driver.get("semanticVersion")),
        target=target or repo or file.name,
        artifact_digest=commit,
        generated_at=iso(when),
    )


def _metadata(run: dict[str, Any], index: int) -> dict[str, Any]:
    tool = obj(run.get("tool"))
    driver = obj(tool.get("driver"))
    rules = arr(driver.get("rules"))
    keep = ("name", "version", "semanticVersion", "organization", "informationUri")
    return {
        "run": index,
        "driver": {k: driver[k] for k in keep if k in driver},
        "rule_count": len(rules),
        "versionControlProvenance": run.get("versionControlProvenance"),
        "automationDetails": run.get("automationDetails"),
        "invocations": [
            {k: i.get(k) for k in ("startTimeUtc", "endTimeUtc", "executionSuccessful") if k in i}
            for i in (run.get("invocations") or [])
            if isinstance(i, dict)
        ],
    }


def find_rule(run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    tool = obj(run.get("tool"))
    component = obj(tool.get("driver"))
    ref = obj(result.get("rule"))
    ext = obj(ref.get("toolComponent"))
    extensions = arr(tool.get("extensions"))
    ext_index = ext.get("index")
    if isinstance(ext_index, int) and 0 <= ext_index < len(extensions):
        component = obj(extensions[ext_index])
    rules = arr(component.get("rules"))
    index = result.get("ruleIndex", ref.get("index"))
    rule_id = text(result.get("ruleId")) or text(ref.get("id"))
    if isinstance(index, int) and 0 <= index < len(rules) and isinstance(rules[index], dict):
        candidate: dict[str, Any] = rules[index]
        if not rule_id or text(candidate.get("id")) == rule_id:
            return candidate
    for rule in rules:
        if isinstance(rule, dict) and rule_id and text(rule.get("id")) == rule_id:
            return rule
    return {"id": rule_id} if rule_id else {}


def _rule_summary(rule: dict[str, Any]) -> dict[str, Any]:
    props = obj(rule.get("properties"))
    kept = {
        k: props[k]
        for k in ("security-severity", "problem.severity", "precision", "tags")
        if k in props
    }
    summary: dict[str, Any] = {
        k: rule[k] for k in ("id", "name", "defaultConfiguration") if k in rule
    }
    if kept:
        summary["properties"] = kept
    short = rule.get("shortDescription")
    if isinstance(short, dict) and "text" in short:
        summary["shortDescription"] = {"text": short["text"]}
    return summary


def primary_location(run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """``{"uri", "line"}`` of the first location, following artifact index references."""
    locations = result.get("locations")
    if not (isinstance(locations, list) and locations and isinstance(locations[0], dict)):
        return {"uri": "", "line": None}
    physical = locations[0].get("physicalLocation")
    physical = obj(physical)
    artifact = obj(physical.get("artifactLocation"))
    uri = text(artifact.get("uri"))
    index = artifact.get("index")
    artifacts = arr(run.get("artifacts"))
    if not uri and isinstance(index, int) and 0 <= index < len(artifacts):
        entry = obj(artifacts[index])
        location = obj(entry.get("location"))
        uri = text(location.get("uri"))
    region = obj(physical.get("region"))
    line = region.get("startLine")
    return {"uri": uri, "line": line if isinstance(line, int) else None}


def level_and_severity(record: dict[str, Any]) -> tuple[str, str, str]:
    """(level, severity, scanner_severity) of a SARIF finding record.

    A ``security-severity`` score (result, then rule properties) decides the
    severity when present; otherwise the level does. The level is the result's,
    else the rule default's, else ``warning``."""
    result, rule = record["finding"], record.get("rule") or {}
    default = obj(rule.get("defaultConfiguration"))
    level = text(result.get("level")) or text(default.get("level")) or "warning"
    result_props = obj(result.get("properties"))
    rule_props = obj(rule.get("properties"))
    score = result_props.get("security-severity", rule_props.get("security-severity"))
    if score is not None and severity_from_score(score) != "unknown":
        return level, severity_from_score(score), text(score)
    return level, severity_from_label(level), level


def is_suppressed(result: dict[str, Any]) -> bool:
    """Suppressed when a suppression is not rejected (SARIF: no status means accepted)."""
    suppressions = result.get("suppressions")
    if not isinstance(suppressions, list):
        return False
    return any(
        isinstance(s, dict) and text(s.get("status")).lower() not in ("rejected", "underreview")
        for s in suppressions
    )


def fingerprint(result: dict[str, Any]) -> str:
    """GitHub's line hash, which follows a result across commits; '' when absent
    (other tools' fingerprints are not reliably unique: Semgrep OSS writes
    "requires login" for every result)."""
    prints = result.get("partialFingerprints")
    if isinstance(prints, dict):
        return text(prints.get("primaryLocationLineHash"))
    return ""
