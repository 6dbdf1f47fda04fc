"""How check results reach controls: directly, across a crosswalk ``equal`` (fully), across the
other relations and from a paragraph to its article (failures and errors only), and the order
in which a control takes the worst of its checks."""

from __future__ import annotations

from evidence.assessment import load_library
from evidence.assessment.evaluate import CheckResult, control_links, roll_up

LIBRARY = load_library()


def result(check_id: str, status: str, failing: dict[str, str] | None = None) -> CheckResult:
    return CheckResult(check_id, status, [], failing or {}, {}, ["sha256:" + "1" * 64], [1], 1)


def statuses(results: dict[str, CheckResult]) -> dict[tuple[str, str], str]:
    return {(fw.id, c.id): c.status for fw in roll_up(LIBRARY, results) for c in fw.controls}


def test_nothing_evaluated_means_every_control_is_not_assessed():
    assert set(statuses({}).values()) == {"not-assessed"}


def test_equal_carries_a_pass_across_frameworks():
    # soc2 P4.2 has no check of its own; the crosswalk says it equals GDPR Art.5(1)(e)
    links = dict(control_links(LIBRARY)[("soc2", "P4.2")])
    assert links == {"retention-lifecycle-delete-max": "equal:gdpr:Art.5(1)(e)"}
    got = statuses(
        {"retention-lifecycle-delete-max": result("retention-lifecycle-delete-max", "satisfied")}
    )
    assert got[("soc2", "P4.2")] == "satisfied"
    assert got[("gdpr", "Art.5(1)(e)")] == "satisfied"


def test_intersects_carries_only_failures_and_errors():
    # iso A.5.15 has no check; soc2 CC6.1 (intersects it) has key-rotation and secrets checks
    ok = {
        c: result(c, "satisfied")
        for c in ("key-rotation-max-age", "key-rotation-policy-set", "secrets-none-open")
    }
    assert (
        statuses(ok)[("iso27001", "A.5.15")] == "not-assessed"
    )  # a partial overlap proves nothing
    failing = {
        **ok,
        "secrets-none-open": result("secrets-none-open", "not-satisfied", {"repo|x": "leak"}),
    }
    got = statuses(failing)
    assert got[("soc2", "CC6.1")] == "not-satisfied"
    assert got[("iso27001", "A.5.15")] == "not-satisfied"  # the failure shows on the other side
    errored = {**ok, "key-rotation-max-age": result("key-rotation-max-age", "error")}
    assert statuses(errored)[("iso27001", "A.5.15")] == "error"
    stale = {**ok, "key-rotation-max-age": result("key-rotation-max-age", "stale")}
    assert statuses(stale)[("iso27001", "A.5.15")] == "not-assessed"


def test_a_paragraph_failure_shows_on_its_article_but_a_pass_does_not():
    passing = {"vulnerability-sla": result("vulnerability-sla", "satisfied")}
    assert statuses(passing)[("gdpr", "Art.32(1)(d)")] == "satisfied"
    # Art.32 has checks of its own (access reviews, policy states) with no result here
    assert statuses(passing)[("gdpr", "Art.32")] == "not-assessed"
    failing = {"vulnerability-sla": result("vulnerability-sla", "not-satisfied")}
    assert statuses(failing)[("gdpr", "Art.32")] == "not-satisfied"


def test_a_control_is_satisfied_only_when_every_check_is():
    a824 = ("iso27001", "A.8.24")
    names = [
        "key-rotation-max-age",
        "key-rotation-policy-set",
        "retention-key-vault-purge-protection",
    ]
    every = {n: result(n, "satisfied") for n in names}
    assert statuses(every)[a824] == "satisfied"
    for worse in ("not-assessed", "stale", "error", "not-satisfied"):
        mixed = {**every, names[1]: result(names[1], worse)}
        assert statuses(mixed)[a824] == worse
    # a known failure outranks not knowing
    mixed = {
        names[0]: result(names[0], "error"),
        names[1]: result(names[1], "not-satisfied"),
        names[2]: result(names[2], "stale"),
    }
    assert statuses(mixed)[a824] == "not-satisfied"


def test_status_json_of_a_control_is_exactly_the_contract():
    frameworks = roll_up(
        LIBRARY, {"vulnerability-sla": result("vulnerability-sla", "not-satisfied", {"s": "r"})}
    )
    control = next(
        c for fw in frameworks if fw.id == "iso27001" for c in fw.controls if c.id == "A.8.8"
    )
    assert control.to_json() == {
        "id": "A.8.8",
        "title": control.title,
        "status": "not-satisfied",
        "checks": [
            {
                "id": "vulnerability-sla",
                "status": "not-satisfied",
                "failing": ["s"],
                "excepted": [],
                "evidence": ["sha256:" + "1" * 64],
            }
        ],
    }
