"""A Consent the engine cannot read is an error that names the element path."""

from typing import Any

import pytest

from consent import MalformedConsent, Policy, organization_references

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ORGS = {"Organization/bv-a": "79001"}


def consent(provision: Any, **fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": "c9",
        "status": "active",
        "scope": SCOPE,
        "provision": provision,
        **fields,
    }


def error(resource: dict[str, Any]) -> MalformedConsent:
    with pytest.raises(MalformedConsent) as caught:
        Policy.from_consents([resource], ORGS, "deny")
    return caught.value


@pytest.mark.parametrize(
    ("provision", "path", "problem"),
    [
        (
            {
                "type": "permit",
                "provision": [{"type": "deny"}, {"type": "deny", "period": {"start": "yesterday"}}],
            },
            "Consent.provision.provision[1].period.start",
            "'yesterday' is not a FHIR dateTime",
        ),
        (
            {"type": "permit", "period": {"start": "2026-02-30"}},
            "Consent.provision.period.start",
            "not a valid date",
        ),
        (
            {"type": "permit", "period": {"start": "2026-06-01", "end": "2026-01-01"}},
            "Consent.provision.period",
            "end is before start",
        ),
        (
            {"type": "permit", "period": {"start": "2026-06-01T10:00:00"}},
            "Consent.provision.period.start",
            "not a FHIR dateTime",
        ),
        ({"type": "allow"}, "Consent.provision.type", "expected deny or permit"),
        ({}, "Consent.provision.type", "no policyRule"),
        (
            {"type": "deny", "provision": [{"class": []}]},
            "Consent.provision.provision[0].type",
            "required in nested provisions",
        ),
        (
            {"type": "deny", "purpose": [{"system": "http://example.org", "code": "TREAT"}]},
            "Consent.provision.purpose[0].system",
            ACT_REASON,
        ),
        (
            {"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types"}]},
            "Consent.provision.class[0].code",
            "missing",
        ),
        (
            {"type": "deny", "securityLabel": [{"code": "HIV"}]},
            "Consent.provision.securityLabel[0].system",
            "missing",
        ),
        (
            {"type": "deny", "actor": [{"reference": {"reference": "CareTeam/1"}}]},
            "Consent.provision.actor[0].reference",
            "cannot list",
        ),
        (
            {
                "type": "deny",
                "actor": [{"reference": {"reference": "https://x.vn/fhir/Organization/1"}}],
            },
            "Consent.provision.actor[0].reference.reference",
            "expected a relative reference",
        ),
        (
            {"type": "deny", "actor": [{"reference": {"reference": "Organization/unknown"}}]},
            "Consent.provision.actor[0].reference.reference",
            "Organization/unknown is not a known facility",
        ),
        (
            {
                "type": "deny",
                "actor": [{"reference": {"identifier": {"system": "x", "value": "1"}}}],
            },
            "Consent.provision.actor[0].reference.identifier.system",
            "https://moh.gov.vn/fhir/sid/facility",
        ),
        (
            {"type": "deny", "actor": [{"role": {"text": "recipient"}}]},
            "Consent.provision.actor[0].reference",
            "missing",
        ),
        ({"type": "deny", "actor": []}, "Consent.provision.actor", "non-empty array"),
        (
            {"type": "deny", "provision": [{"type": "deny", "code": [{"text": "x"}]}]},
            "Consent.provision.provision[0].code[0].coding",
            "text alone",
        ),
        (
            {"type": "deny", "action": [{"coding": [{"system": "x", "code": "access"}]}]},
            "Consent.provision.action[0].coding[0].system",
            "consentaction",
        ),
        ([{"type": "deny"}], "Consent.provision", "expected an object"),
    ],
)
def test_error_names_the_element(provision: Any, path: str, problem: str) -> None:
    caught = error(consent(provision))
    assert caught.path == path
    assert str(caught).startswith(f"{path}: ")
    assert problem in str(caught)
    assert "(Consent/c9)" in str(caught)


def test_consent_level_errors() -> None:
    assert error(consent({"type": "deny"}, dateTime="soon")).path == "Consent.dateTime"
    assert error(consent({"type": "deny"}, scope=None)).path == "Consent.scope"
    assert error(consent({"type": "deny"}, status=None)).path == "Consent.status"
    assert error({"resourceType": "Patient"}).path == "resourceType"


def test_malformed_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"Consent\.provision\.type"):
        Policy.from_consents([consent({"type": 1})], ORGS, "deny")


def test_inactive_consents_are_not_read() -> None:
    broken = consent({"type": "allow"}, status="entered-in-error")
    assert Policy.from_consents([broken], ORGS, "deny").consents == ()


def test_organization_references_lists_the_literal_actors() -> None:
    resource = consent(
        {
            "type": "permit",
            "actor": [{"reference": {"reference": "Organization/bv-a"}}],
            "provision": [
                {"type": "deny", "actor": [{"reference": {"reference": "Organization/bv-b"}}]},
                {"type": "deny", "actor": [{"reference": {"identifier": {"value": "79009"}}}]},
            ],
        }
    )
    assert organization_references([resource]) == {"Organization/bv-a", "Organization/bv-b"}
