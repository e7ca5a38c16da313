"""provision.actor: recipients (facilities, clinicians, people who never read through the hub)
and custodians, by role; and the root provision whose type is not written."""

from datetime import UTC, datetime
from typing import Any

import pytest

from consent import Access, MalformedConsent, Policy, Record, organization_references

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
FACILITY = "https://moh.gov.vn/fhir/sid/facility"
CCHN = "https://moh.gov.vn/fhir/sid/cchn"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ORGS = {"Organization/bv-a": "79001", "Organization/bv-b": "79002"}
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ELSEWHERE = Record("79004", "Observation")


def consent(provision: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "c1",
        "status": "active",
        "scope": SCOPE,
        "provision": provision,
        **fields,
    }


def role(*codes: str) -> dict[str, Any]:
    return {"coding": [{"system": PARTICIPATION, "code": c} for c in codes]}


def actor(reference: str, *roles: str) -> dict[str, Any]:
    found: dict[str, Any] = {"reference": {"reference": reference}}
    if roles:
        found["role"] = role(*roles)
    return found


def policy(provision: dict[str, Any], default: str = "permit") -> Policy:
    return Policy.from_consents([consent(provision)], ORGS, default)


def sees(
    p: Policy, facility: str, practitioner: str | None = None, rec: Record = ELSEWHERE
) -> bool:
    return p.decide(Access(facility, NOW, practitioner=practitioner), rec).allowed


def test_a_practitioner_actor_covers_that_clinician_at_any_facility() -> None:
    permit = policy({"type": "permit", "actor": [actor("Practitioner/d1", "PRCP")]}, "deny")
    assert sees(permit, "79003", "Practitioner/d1")
    assert sees(permit, "79001", "Practitioner/d1")
    assert not sees(permit, "79003", "Practitioner/d2")
    assert not sees(permit, "79003")


def test_a_clinician_kept_out_while_their_facility_sees() -> None:
    # consent-example-notThem's wish, written with its type: not this nurse, everyone else yes.
    p = policy(
        {
            "type": "permit",
            "provision": [{"type": "deny", "actor": [actor("Practitioner/f204", "PRCP")]}],
        },
        "deny",
    )
    assert not sees(p, "79003", "Practitioner/f204")
    assert sees(p, "79003", "Practitioner/f205")
    assert sees(p, "79003")


def test_a_practitioner_by_identifier() -> None:
    by_cchn = {
        "role": role("IRCP"),
        "reference": {"type": "Practitioner", "identifier": {"system": CCHN, "value": "001234"}},
    }
    deny = policy({"type": "deny", "actor": [by_cchn]})
    assert not sees(deny, "79003", f"{CCHN}|001234")
    assert sees(deny, "79003", f"{CCHN}|001235")
    # Matched as written: the same clinician known by another form is not recognised.
    assert sees(deny, "79003", "Practitioner/001234")


def test_an_organization_actor_covers_every_clinician_there() -> None:
    deny = policy({"type": "deny", "actor": [actor("Organization/bv-a", "IRCP")]})
    assert not sees(deny, "79001", "Practitioner/d1")
    assert not sees(deny, "79001")
    assert sees(deny, "79003", "Practitioner/d1")


def test_a_custodian_names_the_facility_holding_the_records() -> None:
    # Nothing held at 79002 (Organization/bv-b) for anyone else.
    deny = policy({"type": "deny", "actor": [actor("Organization/bv-b", "CST")]})
    held_at_b = Record("79002", "Condition")
    assert not sees(deny, "79001", rec=held_at_b)
    assert not sees(deny, "79003", "Practitioner/d1", rec=held_at_b)
    assert sees(deny, "79001", rec=ELSEWHERE)
    # The custodian itself always sees what it holds.
    assert sees(deny, "79002", rec=held_at_b)


def test_a_recipient_and_a_custodian_together() -> None:
    # 79001 may read what 79002 holds, nothing else is said.
    permit = policy(
        {
            "type": "permit",
            "actor": [
                {
                    "role": role("CST"),
                    "reference": {"identifier": {"system": FACILITY, "value": "79002"}},
                },
                actor("Organization/bv-a", "IRCP"),
            ],
        },
        "deny",
    )
    held_at_b = Record("79002", "Condition")
    assert sees(permit, "79001", rec=held_at_b)
    assert not sees(permit, "79001", rec=ELSEWHERE)
    assert not sees(permit, "79003", rec=held_at_b)


@pytest.mark.parametrize("kind", ["Patient", "RelatedPerson", "Device"])
def test_people_who_never_read_through_the_hub_cover_no_access(kind: str) -> None:
    # A deny of them hides nothing from facilities or clinicians; a permit shows nothing.
    deny = policy({"type": "deny", "actor": [actor(f"{kind}/x", "IRCP")]})
    assert sees(deny, "79001") and sees(deny, "79003", "Practitioner/d1")
    permit = policy({"type": "permit", "actor": [actor(f"{kind}/x", "PRCP")]}, "deny")
    assert not sees(permit, "79001") and not sees(permit, "79003", "Practitioner/d1")


def test_beside_a_facility_such_a_recipient_adds_no_one() -> None:
    deny = policy(
        {"type": "deny", "actor": [actor("RelatedPerson/r1", "IRCP"), actor("Organization/bv-a")]}
    )
    assert not sees(deny, "79001")
    assert sees(deny, "79003")


def test_uncoded_or_translated_roles_are_recipients() -> None:
    text_only = {"role": {"text": "recipient"}, "reference": {"reference": "Organization/bv-a"}}
    translated = {
        "role": {"coding": [{"system": "urn:local", "code": "xem"}, *role("IRCP")["coding"]]},
        "reference": {"reference": "Organization/bv-a"},
    }
    for written in (text_only, translated, actor("Organization/bv-a")):
        assert not sees(policy({"type": "deny", "actor": [written]}), "79001")


def test_organization_references_include_custodians() -> None:
    resource = consent(
        {"type": "deny", "actor": [actor("Organization/bv-b", "CST"), actor("Practitioner/d1")]}
    )
    assert organization_references([resource]) == {"Organization/bv-b"}


@pytest.mark.parametrize(
    ("written", "path", "problem"),
    [
        (actor("Group/g1", "IRCP"), "actor[0].reference", "cannot list"),
        (actor("CareTeam/t1"), "actor[0].reference", "cannot list"),
        (actor("PractitionerRole/r1", "PRCP"), "actor[0].reference", "cannot list"),
        (actor("Location/l1"), "actor[0].reference", "not a kind of Consent actor"),
        (
            actor("Practitioner/xcda-author", "AUT"),
            "actor[0].role.coding[0]",
            "AUT: cannot be enforced",
        ),
        (
            {
                "role": {"coding": [{"system": "urn:roles", "code": "reader"}]},
                "reference": {"reference": "Organization/bv-a"},
            },
            "actor[0].role.coding[0]",
            "urn:roles|reader: cannot be enforced",
        ),
        (actor("Organization/bv-a", "CST", "IRCP"), "actor[0].role.coding", "both"),
        (actor("Practitioner/d1", "CST"), "actor[0].reference", "a custodian (CST) is a facility"),
        (
            actor("Organization/nowhere", "CST"),
            "actor[0].reference.reference",
            "not a known facility",
        ),
        (
            {"reference": {"type": "Practitioner", "reference": "Organization/bv-a"}},
            "actor[0].reference.type",
            "does not match",
        ),
        (
            {"reference": {"identifier": {"system": CCHN, "value": "1"}}},
            "actor[0].reference.identifier.system",
            "a reference.type (Practitioner, ...)",
        ),
        (
            {"reference": {"type": "Practitioner", "identifier": {"value": "1"}}},
            "actor[0].reference.identifier.system",
            "missing",
        ),
        (
            {"reference": {"reference": "Practitioner/d1"}, "modifierExtension": [{"url": "x"}]},
            "actor[0].modifierExtension",
            "changes the meaning",
        ),
    ],
)
def test_actors_that_cannot_be_enforced_are_refused(written: Any, path: str, problem: str) -> None:
    with pytest.raises(MalformedConsent) as caught:
        policy({"type": "deny", "actor": [written]})
    assert caught.value.path == f"Consent.provision.{path}"
    assert problem in str(caught.value)


# The root provision's type


OPTIN = {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]}
OPTOUT = {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]}


@pytest.mark.parametrize("rule", [OPTIN, OPTOUT, None])
@pytest.mark.parametrize(
    "conditions",
    [
        {"actor": [actor("Practitioner/f204", "PRCP")]},
        {"period": {"start": "2015-01-01", "end": "2015-02-01"}},
        {"code": [{"coding": [{"system": "http://loinc.org", "code": "1"}]}]},
        {
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}
            ]
        },
    ],
)
def test_an_untyped_root_with_conditions_of_its_own_is_refused(
    rule: dict[str, Any] | None, conditions: dict[str, Any]
) -> None:
    fields = {"policyRule": rule} if rule else {}
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([consent(conditions, **fields)], ORGS, "deny")
    assert caught.value.path == "Consent.provision.type"
    assert "must state its type" in str(caught.value)
    assert next(iter(conditions)) in str(caught.value)


def test_an_untyped_root_without_conditions_takes_the_policy_rule() -> None:
    # R4's own form: the base from policyRule, exceptions nested with their type.
    exception = {"type": "deny", "actor": [actor("Practitioner/f204", "PRCP")]}
    opt_in = Policy.from_consents(
        [consent({"provision": [exception]}, policyRule=OPTIN)], ORGS, "deny"
    )
    assert sees(opt_in, "79003", "Practitioner/f205")
    assert not sees(opt_in, "79003", "Practitioner/f204")
    reads = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}
        ]
    }
    opt_out = Policy.from_consents(
        [consent({"action": [reads]}, policyRule=OPTOUT)], ORGS, "permit"
    )
    assert not sees(opt_out, "79003")


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (consent({"type": "deny"}, modifierExtension=[{"url": "x"}]), "Consent.modifierExtension"),
        (
            consent({"type": "deny", "provision": [{"type": "permit", "modifierExtension": []}]}),
            "Consent.provision.provision[0].modifierExtension",
        ),
        (consent({"type": "deny", "purpose_": []}), "Consent.provision.purpose_"),
        (consent({"type": "deny", "documentType": []}), "Consent.provision.documentType"),
    ],
)
def test_what_could_change_the_meaning_unseen_is_refused(resource: Any, path: str) -> None:
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([resource], ORGS, "deny")
    assert caught.value.path == path
