"""A collection that fails for part of its scope leaves the controls behind it in
``error`` (never ``satisfied``), through the real collectors and the real assessment;
a later clean collection clears it."""

from __future__ import annotations

from evidence.sample.fakeazure import forbidden
from evidence.sample.fakeazure.sample_env import SUBSCRIPTIONS, SUMMARIZE
from evidence.services.assess import status

from .conftest import collect

SUB_A, SUB_B = SUBSCRIPTIONS
SUBS = list(SUBSCRIPTIONS)
POLICY_CONTROLS = [("soc2", "CC7.1"), ("soc2", "CC8.1"), ("iso27001", "A.8.9"), ("gdpr", "Art.25")]


def statuses(rt) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    checks: dict[str, str] = {}
    controls: dict[tuple[str, str], str] = {}
    for fw in status(rt).frameworks:
        for control in fw.controls:
            controls[(fw.id, control.id)] = control.status
            for check, _via in control.checks:
                checks[check.check_id] = check.status
    return checks, controls


def test_a_forbidden_subscription_makes_the_policy_controls_error(azure_ws, fake, sample):
    azure_ws.add_source(name="policy", kind="azure.policy_states", subscriptions=SUBS)
    fake.fault("POST", SUMMARIZE.replace("{sub}", SUB_B), forbidden(), times=None)
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    checks, controls = statuses(azure_ws.runtime())
    assert checks["policy-noncompliant-none"] == "error"
    for key in POLICY_CONTROLS:
        assert controls[key] == "error", key


def test_a_failed_policy_run_is_error_and_a_clean_rerun_judges_again(azure_ws, fake, sample):
    azure_ws.add_source(name="policy", kind="azure.policy_states", subscriptions=SUBS)
    fake.fault("POST", SUMMARIZE, forbidden(), times=1)
    fake.fault("POST", SUMMARIZE, forbidden(), times=1)
    first = collect(azure_ws, "policy")
    assert first.result.status == "failed"
    checks, controls = statuses(azure_ws.runtime())
    assert checks["policy-noncompliant-none"] == "error"
    assert all(controls[key] == "error" for key in POLICY_CONTROLS)

    second = collect(azure_ws, "policy")
    assert second.result.status == "complete", second.errors
    checks, _ = statuses(azure_ws.runtime())
    # the sample tenant has non-compliant resources: judged, and not a pass
    assert checks["policy-noncompliant-none"] == "not-satisfied"
