"""The observation kinds every part agrees on: who produces them and what they say.

Collectors yield observations of these kinds with these attribute names; the
checks in ``controls/checks`` name them; meta tests walk this table. A kind
added here needs a collector that produces it and a check that reads it.
Times inside attributes are ISO 8601 UTC strings (``...Z``); ``observed_at``
is the observation's own field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    subject: str
    attributes: tuple[str, ...]
    observed_at: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "import.record",
            "the record's subject_field (default 'id'), else file#line",
            (),  # whatever the imported record holds
            "the record's observed_at_field, when configured",
        ),
        Kind(
            "azure.policy_state",
            "lower(resourceId)|lower(policyAssignmentId)|lower(policyDefinitionId)"
            "|policyDefinitionReferenceId",
            (
                "resource_id",
                "resource_type",
                "resource_group",
                "subscription_id",
                "policy_assignment_id",
                "policy_assignment_name",
                "policy_definition_id",
                "policy_definition_name",
                "policy_definition_reference_id",
                "policy_set_definition_id",  # the initiative, "" when none
                "compliance_state",  # verbatim: Compliant, NonCompliant, Exempt, Conflict, ...
                "is_compliant",  # bool or None
            ),
            "the state's evaluation timestamp",
        ),
        Kind(
            "azure.retention_setting",
            "lower(resourceId)|setting",
            (
                "resource_id",
                "resource_type",
                "subscription_id",
                "setting",  # blob_soft_delete, container_soft_delete, blob_versioning,
                # lifecycle_delete, immutability_policy, legal_hold, log_analytics_retention,
                # log_analytics_table_retention, key_vault_soft_delete, key_vault_purge_protection
                "enabled",  # bool or None
                "days",  # int or None
                "locked",  # bool or None (immutability policies)
                "details",  # dict: the rest, typed
            ),
            "the resource's last-modified time when the API gives one, else None",
        ),
        Kind(
            "azure.key_rotation",
            "vault_url/keys/key_name (no version)",
            (
                "vault_url",
                "key_name",
                "enabled",
                "versions",  # [{version, created, updated, enabled, expires, not_before}]
                "version_count",
                "current_version",
                "current_created",  # ISO time of the newest version
                "expires",  # ISO time or None
                "rotation_policy",  # {rotate_after, rotate_before_expiry, notify_before_expiry,
                # expiry_time} (ISO 8601 durations or None), or None when the key has no policy
            ),
            "the newest version's creation time",
        ),
        Kind(
            "azure.access_review",
            "definitionId/instanceId",
            (
                "definition_id",
                "definition_name",
                "scope",
                "reviewers",
                "recurrence",
                "auto_apply",
                "instance_start",
                "instance_end",
                "status",
                "completed_at",  # ISO time or None
                "decision_counts",  # {approve, deny, not_reviewed, dont_know}
                "decisions_total",
                "denials_applied",  # bool: every deny decision applied
                "decisions",  # [{id, reviewer, principal, principal_id, decision,
                # justification_present, reviewed_at, apply_result, applied_at}]; people as
                # pseudonyms, decision one of approve, deny, not_reviewed, dont_know
            ),
            "the instance's completion (end) date",
        ),
        Kind(
            "vulnerability.finding",
            "target|vulnerability_id|package|installed_version (code findings from SARIF: "
            "target|scanner:rule_id|file|line hash, or L<line> when the tool gives no hash)",
            (
                "scanner",
                "scanner_version",
                "db_version",
                "target",
                "artifact_digest",
                "vulnerability_id",
                "package",
                "installed_version",
                "fixed_version",
                "severity",  # critical, high, medium, low, negligible, unknown
                "scanner_severity",
                "fix_state",  # fixed, not-fixed, wont-fix, not-affected, unknown
                "suppressed",
                "location",  # the file (path:line for code findings) the finding points at, or ""
            ),
            "the scan's time",
        ),
        Kind(
            "secret.finding",
            "target|rule|file|line|commit",
            (
                "scanner",
                "scanner_version",
                "target",
                "rule",
                "file",
                "line",
                "commit",
                "date",
                "suppressed",
            ),
            "the scan's time",
        ),
        Kind(
            "scan.report",
            "scanner|target",
            (
                "scanner",
                "scanner_version",
                "target",
                "file_sha256",
                "finding_counts",
                "generated_at",
            ),
            "the scan's time",
        ),
        Kind(
            "defender.assessment",
            "lower(assessment resource id)",
            ("resource_id", "assessment_name", "display_name", "status", "severity", "cause"),
            "the assessment's status change date when given",
        ),
    )
}
