"""``azure.defender``: Microsoft Defender for Cloud assessments and sub-assessments.

Per subscription (one scope each), through Resource Manager with the run's
credential: ``Microsoft.Security/assessments`` (every recommendation on every
resource, with its status Healthy / Unhealthy / NotApplicable) and
``Microsoft.Security/subAssessments`` (the findings under them: container
image vulnerabilities, SQL vulnerability-assessment rules, ...), all pages.

Record: ``{"subscription", "type": "assessment"|"sub_assessment", "item": <as sent>}``.
Every record gives a ``defender.assessment`` (status verbatim); an Unhealthy
sub-assessment also gives a ``vulnerability.finding`` in the same model as the
scanners (scanner ``defender``), so one check covers both. A subscription
whose listing fails (after retries) fails its scope and yields nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from pydantic import Field, field_validator

from evidence.collectors.azure._common import access_for, finish
from evidence.collectors.azure._rest import RestClient, RestError
from evidence.collectors.base import CollectContext, Collector, CollectorOptions
from evidence.collectors.files._normalize import obj, parse_time, severity_from_label, text
from evidence.domain.observation import Observation

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ASSESSMENTS_API = "2021-06-01"
SUB_ASSESSMENTS_API = "2019-01-01-preview"


class DefenderOptions(CollectorOptions):
    subscriptions: list[str] = Field(min_length=1)
    sub_assessments: bool = True
    assessments_api_version: str = ASSESSMENTS_API
    sub_assessments_api_version: str = SUB_ASSESSMENTS_API
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    note: str = Field(default="", max_length=500, description="written into every envelope")

    @field_validator("subscriptions")
    @classmethod
    def _guids(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not _GUID.match(s)]
        if bad:
            raise ValueError(f"subscriptions must be subscription ids (GUIDs), got {bad}")
        return [s.lower() for s in value]


class DefenderCollector(Collector):
    kind: ClassVar[str] = "azure.defender"
    version: ClassVar[str] = "1.0"
    options_model = DefenderOptions
    observation_kinds = ("defender.assessment", "vulnerability.finding")
    options: DefenderOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        access = access_for(self.env, self.options)
        client = RestClient(access, access.resource_manager_url, access.arm_scope)
        ctx.query["resource_manager_url"] = access.resource_manager_url
        ctx.provenance["api_versions"] = {
            "assessments": self.options.assessments_api_version,
            "sub_assessments": self.options.sub_assessments_api_version,
        }
        try:
            for subscription in self.options.subscriptions:
                scope = f"/subscriptions/{subscription}"
                ctx.start_scope(scope)
                try:
                    records = list(self._subscription(client, subscription, ctx))
                except RestError as exc:
                    ctx.fail_scope(
                        scope, f"subscription {subscription}: {exc.message}", code=exc.code
                    )
                    continue
                ctx.scopes[scope].records = len(records)
                yield from records
        finally:
            finish(access, ctx, self.options.note)
            client.close()

    def _subscription(
        self, client: RestClient, subscription: str, ctx: CollectContext
    ) -> Iterator[dict[str, Any]]:
        listings = [("assessment", "assessments", self.options.assessments_api_version)]
        if self.options.sub_assessments:
            listings.append(
                ("sub_assessment", "subAssessments", self.options.sub_assessments_api_version)
            )
        for kind, resource, api in listings:
            path = f"/subscriptions/{subscription}/providers/Microsoft.Security/{resource}"
            for page in client.pages(path, {"api-version": api}, next_key="nextLink"):
                ctx.page()
                for item in page:
                    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                        raise RestError("malformed-response", f"{resource}: an item has no id")
                    yield {"subscription": subscription, "type": kind, "item": item}

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        item = record["item"]
        props = obj(item.get("properties"))
        status = obj(props.get("status"))
        details = obj(props.get("resourceDetails"))
        resource_id = text(details.get("id")) or _resource_of(item["id"])
        scope = f"/subscriptions/{record['subscription']}"
        observed = parse_time(status.get("statusChangeDate")) or parse_time(
            props.get("timeGenerated")
        )
        severity = text(status.get("severity")) or text(obj(props.get("metadata")).get("severity"))
        yield Observation(
            kind="defender.assessment",
            subject=item["id"].lower(),
            attributes={
                "resource_id": resource_id,
                "assessment_name": text(item.get("name")),
                "display_name": text(props.get("displayName")),
                "status": text(status.get("code")),
                "severity": severity,
                "cause": text(status.get("cause")),
            },
            observed_at=observed,
            scope=scope,
        )
        if record["type"] == "sub_assessment" and text(status.get("code")).lower() == "unhealthy":
            yield _finding(item, props, status, severity, observed, scope)


def _finding(
    item: dict[str, Any],
    props: dict[str, Any],
    status: dict[str, Any],
    severity: str,
    observed: Any,
    scope: str,
) -> Observation:
    extra = obj(props.get("additionalData"))
    cves = [
        text(obj(c).get("title")) for c in (extra.get("cve") or []) if text(obj(c).get("title"))
    ]
    vuln_id = cves[0] if cves else text(props.get("id"))
    target = _resource_of(text(obj(props.get("resourceDetails")).get("id")) or item["id"])
    patchable = extra.get("patchable")
    fix_state = "fixed" if patchable is True else "not-fixed" if patchable is False else "unknown"
    package = text(extra.get("softwareName") or extra.get("packageName"))
    installed = text(extra.get("softwareVersion") or extra.get("installedVersion"))
    attrs = {
        "scanner": "defender",
        "scanner_version": "",
        "db_version": "",
        "target": target,
        "artifact_digest": text(extra.get("imageDigest")),
        "vulnerability_id": vuln_id,
        "package": package,
        "installed_version": installed,
        "fixed_version": text(extra.get("fixedVersion")),
        "severity": severity_from_label(severity),
        "scanner_severity": severity,
        "fix_state": fix_state,
        "suppressed": text(status.get("cause")).lower() == "exempt",
        "location": text(extra.get("repositoryName")),
    }
    return Observation(
        "vulnerability.finding",
        "|".join([target, vuln_id, package, installed]),
        attrs,
        observed,
        scope,
    )


def _resource_of(resource_id: str) -> str:
    """The assessed resource: the id up to its ``/providers/Microsoft.Security/`` part."""
    cut = resource_id.lower().find("/providers/microsoft.security/")
    return resource_id[:cut] if cut > 0 else resource_id
