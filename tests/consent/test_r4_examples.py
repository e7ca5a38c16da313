"""The official FHIR R4 example Consents (tests/fixtures/r4-consents, all patient-privacy):
each is read, and accepted ones decide as their narrative says.

Expected values come from each example's narrative, by hand. Eleven of the twelve leave the
root provision's type unwritten while it states conditions of its own, and are refused there
(docs/consent.md, Limits: R4 reads such a root both ways). Each is then also read with the
type its narrative gives, to show the rest of it is enforced as written, and where what is
written differs from the narrative, a comment says so.
"""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consent import Access, MalformedConsent, Policy, Record, data_references

FIXTURES = Path(__file__).parents[1] / "fixtures" / "r4-consents"
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
# Organization/f001 of the examples (Good Health Clinic / Psychiatric Hospital) is facility F.
F = "79001"
ORGS = {"Organization/f001": F}
# What Task/example3 (the R4 example) refers to, as the hub would pass it for `related`.
TASK_EXAMPLE3 = frozenset(
    {"MedicationRequest/medrx002", "Patient/f001", "Patient/example", "Practitioner/example"}
)
RELATED = {"Task/example3": TASK_EXAMPLE3}


def example(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((FIXTURES / f"Consent-{name}.json").read_text())
    return resource


def typed(name: str, effect: str) -> dict[str, Any]:
    """Return the example with its root provision's type stated, as its narrative says."""
    resource = copy.deepcopy(example(name))
    resource["provision"]["type"] = effect
    return resource


def read(resource: dict[str, Any], default: str = "permit") -> Policy:
    return Policy.from_consents([resource], ORGS, default, related=RELATED)


def sees(
    policy: Policy,
    facility: str,
    rec: Record,
    practitioner: str | None = None,
    why: str = "TREAT",
    **access: Any,
) -> bool:
    return policy.decide(
        Access(facility, NOW, why, practitioner=practitioner, **access), rec
    ).allowed


HELD_BY_F = Record(F, "Observation", key="Observation/at-f")
HELD_ELSEWHERE = Record("79004", "Observation", key="Observation/elsewhere")


def test_the_fixtures_are_every_consent_example_and_all_patient_privacy() -> None:
    names = sorted(p.name for p in FIXTURES.glob("Consent-*.json"))
    assert len(names) == 12
    for name in names:
        resource = json.loads((FIXTURES / name).read_text())
        assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
        assert resource["status"] == "active"


# Accepted as written


def test_not_org_withholds_everything_from_good_health_clinic() -> None:
    # "withdraw/withhold consent to disclose any instance of his health information to Good
    # Health Clinic" (Organization/f001, the primary information recipient).
    policy = read(example("consent-example-notOrg"))
    assert not sees(policy, F, HELD_ELSEWHERE)
    assert not sees(policy, F, HELD_ELSEWHERE, "Practitioner/any-doctor-there")
    # Other providers are not concerned: the deployment's default (here permit) decides.
    assert sees(policy, "79003", HELD_ELSEWHERE)
    # Good Health Clinic still has its own records.
    assert sees(policy, F, HELD_BY_F)


# Refused where the root's type is not written, and what the rest says once it is


ROOT_UNTYPED = [
    ("consent-example-basic", "period"),
    ("consent-example-notTime", "period"),
    ("consent-example-notAuthor", "actor"),
    ("consent-example-notThis", "data"),
    ("consent-example-notThem", "actor"),
    ("consent-example-Out", "actor"),
    ("consent-example-Emergency", "actor, purpose"),
    ("consent-example-grantor", "actor"),
    ("consent-example-pkb", "actor, securityLabel"),
    ("consent-example-signature", "actor, period"),
    ("consent-example-smartonfhir", "period"),
]


@pytest.mark.parametrize(("name", "conditions"), ROOT_UNTYPED)
def test_an_untyped_root_with_conditions_is_refused(name: str, conditions: str) -> None:
    with pytest.raises(MalformedConsent) as caught:
        read(example(name))
    assert caught.value.path == "Consent.provision.type"
    assert f"conditions of its own ({conditions})" in str(caught.value)
    assert f"(Consent/{name})" in str(caught.value)


def test_not_them_typed_keeps_one_nurse_out() -> None:
    # "she does not want her ex-spouse [the nurse, Practitioner/f204] to have any access".
    policy = read(typed("consent-example-notThem", "deny"))
    assert not sees(policy, "79003", HELD_ELSEWHERE, "Practitioner/f204")
    assert not sees(policy, F, HELD_ELSEWHERE, "Practitioner/f204")
    assert sees(policy, "79003", HELD_ELSEWHERE, "Practitioner/another-nurse")


def test_not_this_typed_withholds_the_order_and_its_related_records() -> None:
    # "withhold consent to disclose the order and all results associated with that specific
    # order": Task/example3 with meaning `related`.
    resource = typed("consent-example-notThis", "deny")
    assert data_references([resource]) == {"Task/example3"}
    policy = read(resource)
    task = Record("79004", "Task", key="Task/example3")
    order = Record("79004", "MedicationRequest", key="MedicationRequest/medrx002")
    other = Record("79004", "MedicationRequest", key="MedicationRequest/medrx003")
    assert not sees(policy, "79003", task)
    assert not sees(policy, "79003", order)
    assert sees(policy, "79003", other)
    # Written as `related` (what the Task refers to), it does not reach a result that
    # refers to the Task: that would be `dependents`. The narrative's "all results" is wider.
    result = Record(
        "79004", "Observation", key="Observation/r", references=frozenset({"Task/example3"})
    )
    assert sees(policy, "79003", result)


def test_not_author_typed_withholds_what_good_health_holds() -> None:
    # "all of the PHI collected at the Good Health Psychiatric Hospital restricted from
    # disclosure to every provider": Organization/f001 as custodian (CST).
    policy = read(typed("consent-example-notAuthor", "deny"))
    assert not sees(policy, "79003", HELD_BY_F)
    assert not sees(policy, "79004", HELD_BY_F, "Practitioner/d1")
    assert sees(policy, "79003", HELD_ELSEWHERE)


def test_out_typed_withholds_what_good_health_holds() -> None:
    # "no data at the Good Health Psychiatric Hospital available for normal treatment use".
    policy = read(typed("consent-example-Out", "deny"))
    assert not sees(policy, "79003", HELD_BY_F, why="TREAT")
    assert sees(policy, "79003", HELD_ELSEWHERE)


def test_emergency_typed_as_written_denies_emergencies_too() -> None:
    # The narrative: an overall deny, an exception permitting emergency treatment (ETREAT)
    # at Good Health, and an exception denying all other purposes there. As written, the
    # deny is nested inside the ETREAT provision, so it covers every emergency access the
    # permit covers: emergencies are denied, even when the glass is broken.
    policy = read(typed("consent-example-Emergency", "permit"), default="deny")
    assert not sees(policy, "79003", HELD_BY_F, why="ETREAT")
    assert not sees(policy, "79003", HELD_BY_F, why="ETREAT", break_glass=True)
    # Other purposes are outside the provision; the default decides.
    assert not sees(policy, "79003", HELD_BY_F, why="TREAT")


def test_grantor_typed_opens_nothing_to_the_hubs_clinicians() -> None:
    # "provide XXX [Patient/example, the recipient] with read-only access to the data at
    # Good Health": a person who never reads through the hub as a facility or clinician.
    policy = read(typed("consent-example-grantor", "permit"), default="deny")
    assert not sees(policy, "79003", HELD_BY_F)
    assert not sees(policy, "79003", HELD_BY_F, "Practitioner/d1")


@pytest.mark.parametrize(
    ("name", "effect"), [("consent-example-basic", "permit"), ("consent-example-notTime", "deny")]
)
def test_a_rule_period_that_ended_before_the_consent_never_applies(name: str, effect: str) -> None:
    # basic: "all of the PHI collected at the Good Health Psychiatric Hospital available for
    # normal treatment use"; notTime: "withhold disclosure of all data from a timeframe".
    # Both write that time frame in `period`, which R4 defines as when the rule is in force
    # (the data's time frame is dataPeriod), and it ended before the consent was given
    # (dateTime): as written, neither ever applies, and the default decides.
    rec = Record(F, "Observation", period=(datetime(2015, 1, 10, tzinfo=UTC),) * 2)
    assert not sees(read(typed(name, effect), default="deny"), "79003", rec)
    assert sees(read(typed(name, effect), default="permit"), "79003", rec)


@pytest.mark.parametrize(
    ("name", "effect", "path", "problem"),
    [
        # The nested rule names the documents' author (AUT) and a MIME type as their class.
        (
            "consent-example-signature",
            "permit",
            "Consent.provision.provision[0].actor[0].role.coding[0]",
            "AUT: cannot be enforced",
        ),
        # Its eleven nested provisions state no type; R4 requires one in nested rules.
        ("consent-example-pkb", "deny", "Consent.provision.provision[0].type", "required"),
    ],
)
def test_what_stays_unenforceable_once_typed(
    name: str, effect: str, path: str, problem: str
) -> None:
    with pytest.raises(MalformedConsent) as caught:
        read(typed(name, effect))
    assert caught.value.path == path
    assert problem in str(caught.value)
