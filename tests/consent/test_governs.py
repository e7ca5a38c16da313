"""Whose records a consent governs, and nested exceptions made of the fine-grained elements."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from consent import Access, Policy, Record

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
TYPES = "http://hl7.org/fhir/resource-types"
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
VIETNAM = timezone(timedelta(hours=7))


def consent(cid: str, provision: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": SCOPE,
        "provision": provision,
    }


def purpose(*codes: str) -> list[dict[str, str]]:
    return [{"system": ACT_REASON, "code": c} for c in codes]


def icd(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": ICD10, "code": code}]}]


def held(facility: str, rtype: str = "Observation", **facts: Any) -> Record:
    return Record(facility, rtype, **facts)


# governs


def test_a_facilitys_consent_governs_only_the_records_it_holds() -> None:
    deny_all = consent("by-b", {"type": "deny"})
    policy = Policy.from_consents([deny_all], {}, "permit", governs={"Consent/by-b": "79002"})
    decision = policy.decide(Access("79003", NOW), held("79002"))
    assert not decision.allowed
    assert decision.reason == "denied by Consent/by-b at Consent.provision"
    # Silent about what 79004 holds: the default decides.
    other = policy.decide(Access("79003", NOW), held("79004"))
    assert other.allowed and "default permit" in other.reason


def test_a_facility_cannot_open_another_facilitys_records() -> None:
    permit_all = consent("by-b", {"type": "permit"})
    policy = Policy.from_consents([permit_all], {}, "deny", governs={"Consent/by-b": "79002"})
    assert policy.decide(Access("79003", NOW), held("79002")).allowed
    assert not policy.decide(Access("79003", NOW), held("79004")).allowed


def test_a_persons_own_consent_governs_all_their_records() -> None:
    deny_all = consent("mine", {"type": "deny"})
    for governs in ({}, {"Consent/mine": None}):
        policy = Policy.from_consents([deny_all], {}, "permit", governs=governs)
        assert not policy.decide(Access("79003", NOW), held("79004")).allowed
        assert not policy.decide(Access("79003", NOW), held("79002")).allowed


def test_the_persons_deny_overrides_a_facilitys_permit_on_its_records() -> None:
    facility_permit = consent("by-b", {"type": "permit"})
    person_deny = consent("mine", {"type": "deny", "code": icd("V")})
    policy = Policy.from_consents(
        [facility_permit, person_deny], {}, "deny", governs={"Consent/by-b": "79002"}
    )
    mental = held("79002", "Condition", codes=frozenset({(ICD10, "F32.1")}))
    assert not policy.decide(Access("79003", NOW), mental).allowed
    assert policy.decide(Access("79003", NOW), held("79002", "Condition")).allowed


def test_a_governed_consent_still_leaves_each_facility_its_own_records() -> None:
    deny_all = consent("by-b", {"type": "deny"})
    policy = Policy.from_consents([deny_all], {}, "deny", governs={"Consent/by-b": "79002"})
    assert policy.decide(Access("79002", NOW), held("79002")).allowed


def test_governs_must_name_the_consents_given() -> None:
    with pytest.raises(ValueError, match="governs names by-b"):
        Policy.from_consents(
            [consent("by-b", {"type": "deny"})], {}, "deny", governs={"by-b": "79002"}
        )


# Nested exceptions with the new elements


def test_mental_health_denied_except_before_a_date_and_for_a_clinician() -> None:
    # Everything for treatment, except chapter V (mental health), except what is older than
    # 2020 (the patient no longer minds), and except for their own psychiatrist.
    policy = Policy.from_consents(
        [
            consent(
                "c1",
                {
                    "type": "permit",
                    "purpose": purpose("TREAT"),
                    "provision": [
                        {
                            "type": "deny",
                            "code": icd("V"),
                            "provision": [
                                {"type": "permit", "dataPeriod": {"end": "2019-12-31"}},
                                {
                                    "type": "permit",
                                    "actor": [{"reference": {"reference": "Practitioner/psy"}}],
                                },
                            ],
                        }
                    ],
                },
            )
        ],
        {},
        "deny",
        zone=VIETNAM,
    )
    f32 = frozenset({(ICD10, "F32.1")})
    before = (datetime(2019, 12, 31, 16, tzinfo=UTC),) * 2  # 23:00 in Hanoi, 31 Dec 2019
    after = (datetime(2019, 12, 31, 17, tzinfo=UTC),) * 2  # midnight in Hanoi, 1 Jan 2020

    def sees(rec: Record, practitioner: str | None = None, why: str = "TREAT") -> bool:
        return policy.decide(Access("79003", NOW, why, practitioner=practitioner), rec).allowed

    assert sees(held("79002", "Condition"))
    assert not sees(held("79002", "Condition", codes=f32, period=after))
    assert sees(held("79002", "Condition", codes=f32, period=before))
    # Without a period, the "older than 2020" exception does not cover it.
    assert not sees(held("79002", "Condition", codes=f32))
    assert sees(held("79002", "Condition", codes=f32, period=after), "Practitioner/psy")
    # The exceptions only apply within their parents: for research nothing is permitted.
    assert not sees(held("79002", "Condition", codes=f32, period=before), why="HRESCH")


def test_one_visit_hidden_except_its_immunizations() -> None:
    policy = Policy.from_consents(
        [
            consent(
                "c1",
                {
                    "type": "deny",
                    "data": [{"meaning": "dependents", "reference": {"reference": "Encounter/e1"}}],
                    "provision": [
                        {"type": "permit", "class": [{"system": TYPES, "code": "Immunization"}]}
                    ],
                },
            )
        ],
        {},
        "permit",
    )
    visit = frozenset({"Encounter/e1"})

    def sees(rec: Record) -> bool:
        return policy.decide(Access("79003", NOW), rec).allowed

    assert not sees(held("79002", "Encounter", key="Encounter/e1"))
    assert not sees(held("79002", "Observation", key="Observation/o1", references=visit))
    assert sees(held("79002", "Immunization", key="Immunization/i1", references=visit))
    assert sees(held("79002", "Observation", key="Observation/o2"))


def test_break_the_glass_against_fine_grained_denies() -> None:
    f20 = frozenset({(ICD10, "F20.0")})
    standing = consent(
        "c1",
        {
            "type": "permit",
            "purpose": purpose("TREAT", "ETREAT"),
            "provision": [{"type": "deny", "code": icd("F20-F29")}],
        },
    )
    yielding = consent(
        "c2",
        {
            "type": "permit",
            "purpose": purpose("TREAT"),
            "provision": [{"type": "deny", "code": icd("F20-F29")}],
        },
    )
    emergency = Access("79003", NOW, "ETREAT", break_glass=True)
    rec = held("79002", "Condition", codes=f20)
    blocked = Policy.from_consents([standing], {}, "deny").decide(emergency, rec)
    assert not blocked.allowed and blocked.reason.endswith("even in emergencies")
    revealed = Policy.from_consents([yielding], {}, "deny").decide(emergency, rec)
    assert revealed.allowed and revealed.by_break_glass
