"""One test per consent rule: Policy.decide."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from consent import Access, Decision, Policy, Record

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TYPES = "http://hl7.org/fhir/resource-types"
FACILITY = "https://moh.gov.vn/fhir/sid/facility"
ORGS = {"Organization/bv-a": "79001", "Organization/bv-b": "79002"}
NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
HIV = (ACT_CODE, "HIV")
PSY = (ACT_CODE, "PSY")


def consent(provision: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Return an active patient-privacy Consent with this provision."""
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": fields.pop("id", "c1"),
        "status": "active",
        "scope": SCOPE,
        "patient": {"reference": "Patient/p1"},
        **fields,
    }
    if provision is not None:
        resource["provision"] = provision
    return resource


def purpose(*codes: str) -> list[dict[str, str]]:
    return [{"system": ACT_REASON, "code": c} for c in codes]


def actor(org: str) -> dict[str, Any]:
    return {"role": {"text": "recipient"}, "reference": {"reference": org}}


def actor_code(code: str) -> dict[str, Any]:
    return {
        "role": {"text": "recipient"},
        "reference": {"identifier": {"system": FACILITY, "value": code}},
    }


def classes(*types: str) -> list[dict[str, str]]:
    return [{"system": TYPES, "code": t} for t in types]


def labels(*codes: tuple[str, str]) -> list[dict[str, str]]:
    return [{"system": s, "code": c} for s, c in codes]


def decide(
    consents: list[dict[str, Any]],
    record: Record,
    *,
    default: str = "deny",
    facility: str = "79001",
    why: str = "TREAT",
    at: datetime = NOW,
    break_glass: bool = False,
) -> Decision:
    """Decide one access to one record under these consents."""
    policy = Policy.from_consents(consents, ORGS, default)
    return policy.decide(Access(facility, at, why, break_glass), record)


def held_by(facility: str, rtype: str = "Observation", *labelled: tuple[str, str]) -> Record:
    return Record(facility, rtype, frozenset(labelled))


ELSEWHERE = held_by("79002")


def test_own_facility_always_sees_its_records() -> None:
    deny_all = consent({"type": "deny"})
    decision = decide([deny_all], held_by("79001", "Condition", HIV))
    assert decision.allowed and not decision.by_break_glass
    assert "asking facility" in decision.reason


def test_default_deny_without_consent() -> None:
    decision = decide([], ELSEWHERE, default="deny")
    assert not decision.allowed
    assert "default deny" in decision.reason


def test_default_permit_without_consent() -> None:
    assert decide([], ELSEWHERE, default="permit").allowed


def test_default_must_be_deny_or_permit() -> None:
    with pytest.raises(ValueError, match="default"):
        Policy.from_consents([], ORGS, "maybe")


def test_permit_all_facilities_for_treatment() -> None:
    permit = consent({"type": "permit", "purpose": purpose("TREAT")})
    decision = decide([permit], ELSEWHERE, facility="79003")
    assert decision.allowed
    assert decision.reason == "permitted by Consent/c1 at Consent.provision"


def test_permit_named_facility_only() -> None:
    permit = consent({"type": "permit", "actor": [actor("Organization/bv-a")]})
    assert decide([permit], ELSEWHERE, facility="79001").allowed
    assert not decide([permit], held_by("79001"), facility="79003").allowed


def test_actor_named_by_facility_identifier() -> None:
    permit = consent({"type": "permit", "actor": [actor_code("79005")]})
    assert decide([permit], ELSEWHERE, facility="79005").allowed
    assert not decide([permit], ELSEWHERE, facility="79001").allowed


def test_deny_named_facility_under_default_permit() -> None:
    deny = consent({"type": "deny", "actor": [actor("Organization/bv-b")]})
    assert not decide([deny], held_by("79001"), default="permit", facility="79002").allowed
    assert decide([deny], ELSEWHERE, default="permit", facility="79003").allowed


def test_expired_period() -> None:
    permit = consent({"type": "permit", "period": {"start": "2025-01-01", "end": "2026-05-31"}})
    assert not decide([permit], ELSEWHERE).allowed


def test_period_end_date_covers_its_whole_day() -> None:
    permit = consent({"type": "permit", "period": {"end": "2026-06-01"}})
    assert decide([permit], ELSEWHERE, at=datetime(2026, 6, 1, 23, 59, tzinfo=UTC)).allowed
    assert not decide([permit], ELSEWHERE, at=datetime(2026, 6, 2, tzinfo=UTC)).allowed


def test_not_yet_valid_period() -> None:
    permit = consent({"type": "permit", "period": {"start": "2026-06-01T10:00:00+07:00"}})
    assert not decide([permit], ELSEWHERE, at=datetime(2026, 6, 1, 2, 59, tzinfo=UTC)).allowed
    assert decide([permit], ELSEWHERE, at=datetime(2026, 6, 1, 3, 0, tzinfo=UTC)).allowed


def test_consent_not_yet_issued() -> None:
    permit = consent({"type": "permit"}, dateTime="2026-07-01")
    assert not decide([permit], ELSEWHERE).allowed
    assert decide([permit], ELSEWHERE, at=datetime(2026, 7, 1, tzinfo=UTC)).allowed


def test_other_purpose_is_not_permitted() -> None:
    permit = consent({"type": "permit", "purpose": purpose("TREAT")})
    assert decide([permit], ELSEWHERE, why="TREAT").allowed
    research = decide([permit], ELSEWHERE, why="HRESCH")
    assert not research.allowed
    assert "default deny" in research.reason


def test_data_class_by_resource_type() -> None:
    permit = consent({"type": "permit", "class": classes("Immunization", "AllergyIntolerance")})
    assert decide([permit], held_by("79002", "Immunization")).allowed
    assert not decide([permit], held_by("79002", "Condition")).allowed


def test_hiv_data_denied_while_the_rest_is_permitted() -> None:
    permit = consent(
        {"type": "permit", "provision": [{"type": "deny", "securityLabel": labels(HIV)}]}
    )
    assert decide([permit], held_by("79002", "Observation")).allowed
    hiv = decide([permit], held_by("79002", "Observation", HIV))
    assert not hiv.allowed
    assert hiv.reason == "denied by Consent/c1 at Consent.provision.provision[0]"


def test_label_matches_by_system_and_code() -> None:
    deny = consent({"type": "deny", "securityLabel": labels(PSY)})
    other_system = ("http://example.org/labels", "PSY")
    assert decide([deny], held_by("79002", "Observation", other_system), default="permit").allowed


def test_nested_exception_to_a_deny() -> None:
    deny = consent(
        {
            "type": "deny",
            "actor": [actor("Organization/bv-b")],
            "provision": [{"type": "permit", "class": classes("Immunization")}],
        }
    )
    assert decide(
        [deny], held_by("79001", "Immunization"), default="permit", facility="79002"
    ).allowed
    assert not decide([deny], held_by("79001"), default="permit", facility="79002").allowed


def test_exception_applies_only_within_its_parent() -> None:
    permit = consent(
        {
            "type": "permit",
            "actor": [actor("Organization/bv-a")],
            "provision": [{"type": "deny", "class": classes("Condition")}],
        }
    )
    # At another facility the parent does not cover the access: its exception does not either.
    assert decide(
        [permit], held_by("79002", "Condition"), default="permit", facility="79003"
    ).allowed
    assert not decide([permit], held_by("79002", "Condition"), facility="79001").allowed


def test_deny_overrides_permit_among_sibling_exceptions() -> None:
    permit = consent(
        {
            "type": "deny",
            "provision": [
                {"type": "permit", "class": classes("Observation")},
                {"type": "deny", "securityLabel": labels(PSY)},
            ],
        }
    )
    assert decide([permit], held_by("79002", "Observation")).allowed
    assert not decide([permit], held_by("79002", "Observation", PSY)).allowed


def test_several_consents_deny_overrides_permit() -> None:
    permit_all = consent({"type": "permit"}, id="all")
    deny_b = consent({"type": "deny", "actor": [actor("Organization/bv-b")]}, id="not-b")
    denied = decide([permit_all, deny_b], held_by("79001"), facility="79002")
    assert not denied.allowed
    assert denied.reason == "denied by Consent/not-b at Consent.provision"
    assert decide([permit_all, deny_b], ELSEWHERE, facility="79003").allowed


def test_silent_consent_leaves_the_default() -> None:
    deny_b = consent({"type": "deny", "actor": [actor("Organization/bv-b")]})
    assert not decide([deny_b], ELSEWHERE, facility="79003", default="deny").allowed
    assert decide([deny_b], ELSEWHERE, facility="79003", default="permit").allowed


def test_inactive_and_other_scope_consents_are_ignored() -> None:
    inactive = consent({"type": "permit"}, status="inactive")
    research = consent({"type": "permit"})
    research["scope"] = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}
        ]
    }
    assert not decide([inactive, research], ELSEWHERE).allowed
    assert Policy.from_consents([inactive, research], ORGS, "deny").consents == ()


def test_policy_rule_gives_the_base_when_the_root_has_no_type() -> None:
    rule = {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]}
    opt_out = consent(None, policyRule=rule)
    assert not decide([opt_out], ELSEWHERE, default="permit").allowed
    with_exception = consent(
        {"provision": [{"type": "permit", "class": classes("Immunization")}]}, policyRule=rule
    )
    assert decide([with_exception], held_by("79002", "Immunization"), default="permit").allowed


def test_actions_other_than_reading_do_not_govern_reading() -> None:
    correct = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "correct"}
            ]
        }
    ]
    access = [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}
            ]
        }
    ]
    assert decide(
        [consent({"type": "deny", "action": correct})], ELSEWHERE, default="permit"
    ).allowed
    assert not decide(
        [consent({"type": "deny", "action": access})], ELSEWHERE, default="permit"
    ).allowed


def test_break_glass_allows_with_flag() -> None:
    permit_treat = consent(
        {
            "type": "permit",
            "purpose": purpose("TREAT"),
            "provision": [{"type": "deny", "securityLabel": labels(PSY)}],
        }
    )
    record = held_by("79002", "Condition", PSY)
    assert not decide([permit_treat], record, why="ETREAT").allowed
    decision = decide([permit_treat], record, why="ETREAT", break_glass=True)
    assert decision.allowed and decision.by_break_glass
    assert decision.reason.startswith("break the glass over: ")


def test_break_glass_overrides_a_deny_without_purpose() -> None:
    deny_b = consent({"type": "deny", "actor": [actor("Organization/bv-b")]})
    decision = decide([deny_b], held_by("79001"), facility="79002", why="ETREAT", break_glass=True)
    assert decision.allowed and decision.by_break_glass


def test_break_glass_not_flagged_when_consent_already_permits() -> None:
    permit = consent({"type": "permit", "purpose": purpose("TREAT", "ETREAT")})
    decision = decide([permit], ELSEWHERE, why="ETREAT", break_glass=True)
    assert decision.allowed and not decision.by_break_glass


def test_break_glass_blocked_by_an_etreat_deny() -> None:
    deny_b = consent(
        {
            "type": "deny",
            "actor": [actor("Organization/bv-b")],
            "purpose": purpose("TREAT", "ETREAT"),
        }
    )
    decision = decide([deny_b], held_by("79001"), facility="79002", why="ETREAT", break_glass=True)
    assert not decision.allowed and not decision.by_break_glass
    assert decision.reason == "denied by Consent/c1 at Consent.provision, even in emergencies"


def test_break_glass_blocked_by_a_deny_nested_in_an_etreat_provision() -> None:
    permit = consent(
        {
            "type": "permit",
            "purpose": purpose("TREAT", "ETREAT"),
            "provision": [{"type": "deny", "securityLabel": labels(HIV)}],
        }
    )
    assert not decide(
        [permit], held_by("79002", "Observation", HIV), why="ETREAT", break_glass=True
    ).allowed


def test_break_glass_requires_emergency_purpose() -> None:
    with pytest.raises(ValueError, match="ETREAT"):
        Access("79001", NOW, "TREAT", break_glass=True)


def test_access_time_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Access("79001", datetime(2026, 6, 1))


def test_record_of_a_resource() -> None:
    resource = {
        "resourceType": "Condition",
        "meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]},
    }
    assert Record.of(resource, "79002") == Record("79002", "Condition", frozenset({HIV}))


def test_dates_without_time_are_days_in_the_given_zone() -> None:
    vietnam = timezone(timedelta(hours=7))
    permit = consent({"type": "permit", "period": {"end": "2026-06-01"}})
    policy = Policy.from_consents([permit], ORGS, "deny", zone=vietnam)
    late_evening_in_hanoi = datetime(2026, 6, 1, 16, 59, tzinfo=UTC)
    after_midnight_in_hanoi = datetime(2026, 6, 1, 17, 0, tzinfo=UTC)
    assert policy.decide(Access("79001", late_evening_in_hanoi), ELSEWHERE).allowed
    assert not policy.decide(Access("79001", after_midnight_in_hanoi), ELSEWHERE).allowed
