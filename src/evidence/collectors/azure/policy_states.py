"""``azure.policy_states``: Azure Policy compliance states, with proof of completeness.

For every subscription in scope (listed, or found under a management group) the
collector reads the *latest* policy states for one fixed time window through
``PolicyInsightsClient.policy_states.list_query_results_for_subscription``, all
pages, and ``summarize_for_subscription`` for the same window and filter. The
number of states collected must equal the number the summary reports (the sum
of ``resourceDetails`` counts per assignment and definition); a mismatch fails
that subscription's scope, it is never accepted silently.

Record (one per state): ``{"scope": "/subscriptions/<id>", "page": n, "state":
<the state's JSON as the service sent it>}``. Observation ``azure.policy_state``
per (resource, assignment, definition, reference id); compliance states are
kept verbatim, including values this code does not know.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from evidence.collectors.azure._auth import AzureAccess
from evidence.collectors.azure._common import (
    AzureScopeOptions,
    RawPages,
    azure_errors,
    discover_subscriptions,
    error_code,
    iter_values,
    raw_listing,
    subscription_scope,
    with_access,
)
from evidence.collectors.base import CollectContext, Collector
from evidence.domain.canonical import utc_text
from evidence.domain.observation import Observation

POLICY_INSIGHTS_API = "2019-10-01"  # what azure-mgmt-policyinsights 1.0.x sends for policy states


class PolicyStatesOptions(AzureScopeOptions):
    only_non_compliant: bool = False
    policy_assignments: list[str] = Field(
        default_factory=list, description="assignment ids (or names) to keep; empty: all"
    )
    initiatives: list[str] = Field(
        default_factory=list, description="policy set definition ids (or names) to keep"
    )
    filter: str = Field(default="", description="extra OData $filter, ANDed with the above")
    window_hours: int = Field(default=24, ge=1, le=24 * 90)


def build_filter(options: PolicyStatesOptions) -> str:
    """The OData ``$filter`` the options describe (also written to the envelope)."""
    parts: list[str] = []
    if options.only_non_compliant:
        parts.append("ComplianceState eq 'NonCompliant'")
    if options.policy_assignments:
        parts.append(_any_of("PolicyAssignment", options.policy_assignments))
    if options.initiatives:
        parts.append(_any_of("PolicySetDefinition", options.initiatives))
    if options.filter:
        parts.append(f"({options.filter})")
    return " and ".join(parts)


def _any_of(field: str, values: list[str]) -> str:
    terms = []
    for value in values:
        column = f"{field}Id" if value.startswith("/") else f"{field}Name"
        terms.append(f"{column} eq '{value.replace(chr(39), chr(39) * 2)}'")
    return "(" + " or ".join(terms) + ")"


def summary_total(summary: Any) -> int | None:
    """Policy states the service counts for a summarize result: the sum of resource counts
    per (assignment, definition). None when the result has no summary at all."""
    values = getattr(summary, "value", None)
    if not values:
        return None
    total = 0
    for item in values:
        for assignment in item.policy_assignments or []:
            for definition in assignment.policy_definitions or []:
                details = getattr(definition.results, "resource_details", None) or []
                total += sum(int(d.count or 0) for d in details)
    return total


class PolicyStatesCollector(Collector):
    kind: ClassVar[str] = "azure.policy_states"
    version: ClassVar[str] = "1.0"
    options_model = PolicyStatesOptions
    observation_kinds = ("azure.policy_state",)
    # Policy states name resources and policies, not people (policyAssignmentOwner is a
    # category such as "tbd"); e-mail addresses anywhere are pseudonymized by the service.
    options: PolicyStatesOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        return with_access(self.env, self.options, ctx, self._collect)

    def _collect(self, access: AzureAccess, ctx: CollectContext) -> Iterator[Any]:
        from azure.mgmt.policyinsights.models import QueryOptions

        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(hours=self.options.window_hours)
        odata_filter = build_filter(self.options)
        ctx.query.update(
            {
                "policy_states_resource": "latest",
                "from": utc_text(since),
                "to": utc_text(until),
                "filter": odata_filter,
            }
        )
        ctx.provenance["api_versions"] = {"policy_insights": POLICY_INSIGHTS_API}
        ctx.provenance["identity"] = access.identity()
        ctx.provenance["endpoint"] = access.resource_manager_url
        subscriptions = discover_subscriptions(access, self.options, ctx)
        counts: dict[str, dict[str, Any]] = {}
        ctx.provenance["completeness"] = counts
        for subscription in subscriptions:
            scope = subscription_scope(subscription)
            ctx.start_scope(scope)
            query = QueryOptions(from_property=since, to=until, filter=odata_filter or None)
            yield from self._subscription(access, ctx, subscription, scope, query, counts)

    def _subscription(
        self,
        access: AzureAccess,
        ctx: CollectContext,
        subscription: str,
        scope: str,
        query: Any,
        counts: dict[str, dict[str, Any]],
    ) -> Iterator[Any]:
        from azure.mgmt.policyinsights import PolicyInsightsClient

        client = PolicyInsightsClient(access.credential, subscription, **access.arm_kwargs())
        entry: dict[str, Any] = {"summarized": None, "collected": 0, "pages": 0}
        counts[scope] = entry
        try:
            summary = client.policy_states.summarize_for_subscription(
                "latest", subscription, query_options=query
            )
        except azure_errors() as exc:
            code, message = error_code(exc)
            ctx.fail_scope(scope, f"{scope}: summarize failed: {message}", code=code)
            return
        entry["summarized"] = summary_total(summary)
        fast = raw_listing(client.policy_states, "PolicyStatesQueryResults", "@odata.nextLink")
        raw = RawPages()
        hook = {} if fast else {"raw_response_hook": raw}
        pages = client.policy_states.list_query_results_for_subscription(
            "latest", subscription, query_options=query, **hook
        ).by_page()
        number = 0
        while True:
            number += 1
            try:
                models = list(next(pages))
            except StopIteration:
                break
            except azure_errors() as exc:
                code, message = error_code(exc)
                ctx.fail_scope(scope, f"{scope}: page {number}: {message}", code=code)
                return
            if fast:
                states = models  # already the service's JSON
            else:
                try:
                    states = list(iter_values(raw.take(), scope, number))
                except ValueError as exc:
                    ctx.fail_scope(scope, str(exc), code="malformed-response")
                    return
            if len(states) != len(models) or not all(isinstance(s, dict) for s in states):
                ctx.fail_scope(
                    scope,
                    f"{scope}: page {number}: items are not policy states",
                    code="malformed-response",
                )
                return
            ctx.page()
            entry["pages"] = number
            for state in states:
                entry["collected"] += 1
                yield {"scope": scope, "page": number, "state": state}
        ctx.scopes[scope].records = entry["collected"]
        if entry["summarized"] is None:
            ctx.fail_scope(
                scope,
                f"{scope}: summarize returned no summary, completeness cannot be shown",
                code="summary-missing",
            )
        elif entry["summarized"] != entry["collected"]:
            ctx.fail_scope(
                scope,
                f"{scope}: collected {entry['collected']} policy states but the service "
                f"summarizes {entry['summarized']}",
                code="count-mismatch",
            )

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        state = record.get("state") if isinstance(record, dict) else None
        if not isinstance(state, dict):
            return
        resource = _text(state, "resourceId")
        assignment = _text(state, "policyAssignmentId")
        definition = _text(state, "policyDefinitionId")
        reference = _text(state, "policyDefinitionReferenceId")
        if not (resource and assignment and definition):
            return  # not a policy state (an aggregate row, say): kept in the artifact only
        compliant = state.get("isCompliant")
        compliance = state.get("complianceState")
        if not isinstance(compliance, str) or not compliance:
            compliance = (
                {True: "Compliant", False: "NonCompliant"}.get(compliant, "Unknown")
                if isinstance(compliant, bool)
                else "Unknown"
            )
        yield Observation(
            kind="azure.policy_state",
            subject=f"{resource.lower()}|{assignment.lower()}|{definition.lower()}|{reference}",
            attributes={
                "resource_id": resource,
                "resource_type": _text(state, "resourceType"),
                "resource_group": _text(state, "resourceGroup"),
                "subscription_id": _text(state, "subscriptionId")
                or record.get("scope", "").rsplit("/", 1)[-1],
                "policy_assignment_id": assignment,
                "policy_assignment_name": _text(state, "policyAssignmentName"),
                "policy_definition_id": definition,
                "policy_definition_name": _text(state, "policyDefinitionName"),
                "policy_definition_reference_id": reference,
                "policy_set_definition_id": _text(state, "policySetDefinitionId"),
                "compliance_state": compliance,
                "is_compliant": compliant if isinstance(compliant, bool) else None,
            },
            observed_at=_time(state.get("timestamp")),
            scope=str(record.get("scope", "")),
            record_index=index,
        )


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.utcoffset() is not None else None
