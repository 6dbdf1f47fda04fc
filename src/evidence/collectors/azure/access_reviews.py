"""``azure.access_reviews``: Entra ID access reviews from Microsoft Graph, with every decision.

Walks ``identityGovernance/accessReviews``: every definition (all pages), each
definition's instances, each instance's decisions, through an azure-core
pipeline with the run's azure-identity credential (``_rest``). One record per
review instance: ``{"definition": ..., "instance": ..., "decisions": [...]}``,
the Graph objects as sent, except that people are pseudonymized before the
record leaves the collector: user principal names, e-mail addresses and
display names of users (reviewers, principals, targets, creators) become
keyed pseudonyms; object ids stay.

Scopes: one per definition. A definition whose instances or decisions cannot
be read (after the pipeline's retries) fails its scope and yields nothing,
the others carry on (run ``partial``); if the definitions themselves cannot
be listed the run fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from evidence.collectors.azure._common import access_for, finish
from evidence.collectors.azure._rest import RestClient, RestError
from evidence.collectors.base import CollectContext, Collector, CollectorOptions
from evidence.collectors.files._normalize import arr, iso, obj, parse_time
from evidence.domain.observation import Observation
from evidence.errors import CollectorError

# Keys that hold a person's name or address wherever they appear in a record.
PEOPLE_KEYS = frozenset(
    {
        "userPrincipalName",
        "userDisplayName",
        "principalName",
        "mail",
        "email",
        "reviewerDisplayName",
    }
)
# Identity objects whose displayName is a person's unless their type says otherwise.
IDENTITY_FIELDS = ("reviewedBy", "appliedBy", "principal", "target", "createdBy", "reviewer")
NOT_PEOPLE = ("group", "serviceprincipal", "application", "device")
DECISIONS = {
    "approve": "approve",
    "deny": "deny",
    "notreviewed": "not_reviewed",
    "dontknow": "dont_know",
}
COMPLETED = {"completed", "applied", "autoreviewed", "applying"}


class AccessReviewsOptions(CollectorOptions):
    api_version: Literal["v1.0", "beta"] = "v1.0"
    definitions: list[str] = Field(
        default_factory=list, description="definition ids to collect; empty: all"
    )
    page_size: int = Field(default=100, ge=1, le=1000)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    note: str = Field(default="", max_length=500, description="written into every envelope")


class AccessReviewsCollector(Collector):
    kind: ClassVar[str] = "azure.access_reviews"
    version: ClassVar[str] = "1.0"
    options_model = AccessReviewsOptions
    observation_kinds = ("azure.access_review",)
    personal_keys = PEOPLE_KEYS
    options: AccessReviewsOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        access = access_for(self.env, self.options)
        graph_url = str(getattr(self.env.azure, "graph_url", "https://graph.microsoft.com")).rstrip(
            "/"
        )
        client = RestClient(access, graph_url, f"{graph_url}/.default")
        base = f"/{self.options.api_version}/identityGovernance/accessReviews/definitions"
        ctx.query.update(
            {"graph_url": graph_url, "path": base, "page_size": self.options.page_size}
        )
        ctx.provenance["api_version"] = self.options.api_version
        try:
            definitions = self._definitions(client, base, ctx)
            for definition in definitions:
                def_id = str(definition.get("id", ""))
                scope = f"accessReviews/definitions/{def_id}"
                ctx.start_scope(scope)
                try:
                    records = self._instances(client, base, definition, ctx)
                except RestError as exc:
                    ctx.fail_scope(scope, f"definition {def_id}: {exc.message}", code=exc.code)
                    continue
                ctx.scopes[scope].records = len(records)
                yield from records
        finally:
            finish(access, ctx, self.options.note)
            client.close()

    def _definitions(
        self, client: RestClient, base: str, ctx: CollectContext
    ) -> list[dict[str, Any]]:
        wanted = set(self.options.definitions)
        found: list[dict[str, Any]] = []
        try:
            for page in client.pages(
                base, {"$top": str(self.options.page_size)}, next_key="@odata.nextLink"
            ):
                ctx.page()
                found.extend(
                    d for d in page if isinstance(d, dict) and (not wanted or d.get("id") in wanted)
                )
        except RestError as exc:
            raise CollectorError(
                f"access review definitions could not be listed: {exc.message}",
                scope="accessReviews/definitions",
                service_code=exc.code,
                remedy="the identity needs AccessReview.Read.All on Microsoft Graph",
            ) from None
        missing = wanted - {str(d.get("id")) for d in found}
        for def_id in sorted(missing):
            ctx.fail_scope(
                f"accessReviews/definitions/{def_id}", "no such definition", code="not-found"
            )
        return found

    def _instances(
        self, client: RestClient, base: str, definition: dict[str, Any], ctx: CollectContext
    ) -> list[dict[str, Any]]:
        """Every instance of one definition with all its decisions (read fully before any
        is yielded, so a failing page leaves nothing half-collected)."""
        def_id = definition.get("id")
        summary = {k: v for k, v in definition.items() if k != "instances"}
        summary = pseudonymize_people(summary, ctx.pseudonymize)
        records = []
        path = f"{base}/{def_id}/instances"
        for page in client.pages(
            path, {"$top": str(self.options.page_size)}, next_key="@odata.nextLink"
        ):
            ctx.page()
            for instance in page:
                if not isinstance(instance, dict):
                    raise RestError(
                        "malformed-response", f"an instance of {def_id} is not an object"
                    )
                decisions: list[Any] = []
                decisions_path = f"{path}/{instance.get('id')}/decisions"
                for decision_page in client.pages(
                    decisions_path,
                    {"$top": str(self.options.page_size)},
                    next_key="@odata.nextLink",
                ):
                    ctx.page()
                    decisions.extend(
                        pseudonymize_people(d, ctx.pseudonymize) for d in decision_page
                    )
                records.append(
                    {
                        "definition": summary,
                        "instance": pseudonymize_people(instance, ctx.pseudonymize),
                        "decisions": decisions,
                    }
                )
        return records

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        yield review_observation(record)

    def describe_query(self) -> dict[str, Any]:
        return self.options.model_dump(mode="json")


def pseudonymize_people(value: Any, pseudonym: Callable[[str], str]) -> Any:
    """``value`` with people's names and addresses replaced by pseudonyms: the PEOPLE_KEYS
    anywhere, and ``displayName`` of identity objects that are not groups, apps or devices."""
    if isinstance(value, list):
        return [pseudonymize_people(v, pseudonym) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in PEOPLE_KEYS and isinstance(item, str) and item:
            out[key] = pseudonym(item)
        elif key in IDENTITY_FIELDS and isinstance(item, dict):
            out[key] = _identity(item, pseudonym)
        else:
            out[key] = pseudonymize_people(item, pseudonym)
    return out


def _identity(identity: dict[str, Any], pseudonym: Callable[[str], str]) -> dict[str, Any]:
    kind = str(identity.get("@odata.type") or identity.get("type") or "").lower()
    person = not any(word in kind for word in NOT_PEOPLE)
    cleaned = pseudonymize_people(identity, pseudonym)
    name = cleaned.get("displayName")
    if person and isinstance(name, str) and name:
        cleaned["displayName"] = pseudonym(name)
    return dict(cleaned)


_ZERO_ID = "00000000-0000-0000-0000-000000000000"


def _who(identity: Any) -> str | None:
    """A person as stored: their pseudonymized UPN, else pseudonymized name, else object id;
    None for Graph's empty placeholder (zero GUID, no name)."""
    if not isinstance(identity, dict):
        return None
    for key in ("userPrincipalName", "displayName"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            return value
    ident = identity.get("id") or identity.get("userId")
    return str(ident) if ident and ident != _ZERO_ID else None


def review_observation(record: dict[str, Any]) -> Observation:
    definition, instance = record["definition"], record["instance"]
    settings = obj(definition.get("settings"))
    counts = dict.fromkeys(("approve", "deny", "not_reviewed", "dont_know"), 0)
    decisions = []
    denials_applied = True
    for item in record["decisions"]:
        if not isinstance(item, dict):
            continue
        raw = str(item.get("decision") or "NotReviewed")
        decision = DECISIONS.get(raw.lower(), raw.lower())
        counts[decision] = counts.get(decision, 0) + 1
        result = str(item.get("applyResult") or "")
        applied = result.lower().startswith("appliedsuccessful")
        if decision == "deny" and not applied:
            denials_applied = False
        principal = obj(item.get("principal"))
        decisions.append(
            {
                "id": item.get("id"),
                "reviewer": _who(item.get("reviewedBy")),
                "principal": _who(principal) or _who(item.get("target")),
                "principal_id": principal.get("id"),
                "decision": decision,
                "justification_present": bool(str(item.get("justification") or "").strip()),
                "reviewed_at": iso(parse_time(item.get("reviewedDateTime"))),
                "apply_result": result or None,
                "applied_at": iso(parse_time(item.get("appliedDateTime"))),
            }
        )
    status = str(instance.get("status") or definition.get("status") or "")
    end = parse_time(instance.get("endDateTime"))
    reviewers = arr(definition.get("reviewers"))
    attributes = {
        "definition_id": definition.get("id"),
        "definition_name": definition.get("displayName"),
        "scope": instance.get("scope") or definition.get("scope"),
        "reviewers": reviewers,
        "recurrence": settings.get("recurrence"),
        "auto_apply": bool(settings.get("autoApplyDecisionsEnabled")),
        "instance_start": iso(parse_time(instance.get("startDateTime"))),
        "instance_end": iso(end),
        "status": status,
        "completed_at": iso(end) if status.lower() in COMPLETED else None,
        "decision_counts": counts,
        "decisions_total": len(decisions),
        "denials_applied": denials_applied,
        "decisions": decisions,
    }
    return Observation(
        kind="azure.access_review",
        subject=f"{definition.get('id')}/{instance.get('id')}",
        attributes=attributes,
        observed_at=end,
        scope=f"accessReviews/definitions/{definition.get('id')}",
    )
