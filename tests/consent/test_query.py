"""The MongoDB filter a Grant becomes: exact shapes for the documented examples."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent import Access, Grant, Policy, grant_filter, security_labels
from consent.grant import FALSE, TRUE, LabelIn, TypeIn

SCOPE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NOW = datetime(2026, 6, 1, tzinfo=UTC)

# docs/consent.md, example 1: every facility may see the records for treatment, except
# mental-health data.
ALL_BUT_MENTAL_HEALTH: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "example-mental-health",
    "status": "active",
    "scope": SCOPE,
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2026-05-01",
    "provision": {
        "type": "permit",
        "purpose": [
            {"system": ACT_REASON, "code": "TREAT"},
            {"system": ACT_REASON, "code": "ETREAT"},
        ],
        "provision": [
            {
                "type": "deny",
                "securityLabel": [
                    {"system": ACT_CODE, "code": "PSY"},
                    {"system": ACT_CODE, "code": "MH"},
                ],
            }
        ],
    },
}
# docs/consent.md, example 2: one facility may see nothing, even in an emergency.
NOT_THIS_FACILITY: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "example-not-79002",
    "status": "active",
    "scope": SCOPE,
    "patient": {"reference": "Patient/p1"},
    "dateTime": "2026-05-01",
    "provision": {
        "type": "deny",
        "actor": [
            {
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "IRCP",
                        }
                    ]
                },
                "reference": {
                    "identifier": {
                        "system": "https://moh.gov.vn/fhir/sid/facility",
                        "value": "79002",
                    }
                },
            }
        ],
        "purpose": [
            {"system": ACT_REASON, "code": "TREAT"},
            {"system": ACT_REASON, "code": "ETREAT"},
        ],
    },
}


def test_filter_of_the_mental_health_example() -> None:
    policy = Policy.from_consents([ALL_BUT_MENTAL_HEALTH], {}, "deny")
    grant = policy.grant(Access("79001", NOW, "TREAT"))
    assert grant.condition == LabelIn(
        frozenset({(ACT_CODE, "PSY"), (ACT_CODE, "MH")}), negated=True
    )
    assert grant_filter(grant) == {
        "$or": [
            {"_hub.fac": "79001"},
            {"_hub.labels": {"$nin": [f"{ACT_CODE}|MH", f"{ACT_CODE}|PSY"]}},
        ]
    }


def test_research_under_the_mental_health_example_sees_only_its_own() -> None:
    policy = Policy.from_consents([ALL_BUT_MENTAL_HEALTH], {}, "deny")
    grant = policy.grant(Access("79001", NOW, "HRESCH"))
    assert grant.condition == FALSE
    assert grant_filter(grant) == {"_hub.fac": "79001"}


def test_filter_of_the_facility_example() -> None:
    policy = Policy.from_consents([NOT_THIS_FACILITY], {}, "permit")
    elsewhere = policy.grant(Access("79001", NOW))
    assert elsewhere.everything and grant_filter(elsewhere) == {}
    emergency = policy.grant(Access("79002", NOW, "ETREAT", break_glass=True))
    assert grant_filter(emergency) == {"_hub.fac": "79002"}


def test_field_names_are_parameters() -> None:
    grant = Grant("79001", TypeIn(frozenset({"Immunization", "AllergyIntolerance"})))
    assert grant_filter(grant, facility_field="_hub.facility") == {
        "$or": [
            {"_hub.facility": "79001"},
            {"resourceType": {"$in": ["AllergyIntolerance", "Immunization"]}},
        ]
    }
    assert grant_filter(Grant("79001", TRUE)) == {}


def test_conditions_join_the_own_facility_in_one_or() -> None:
    policy = Policy.from_consents(
        [
            {
                "resourceType": "Consent",
                "status": "active",
                "scope": SCOPE,
                "provision": {
                    "type": "permit",
                    "provision": [
                        {
                            "type": "deny",
                            "class": [
                                {
                                    "system": "http://hl7.org/fhir/resource-types",
                                    "code": "Condition",
                                }
                            ],
                            "securityLabel": [{"system": ACT_CODE, "code": "HIV"}],
                        }
                    ],
                },
            }
        ],
        {},
        "deny",
    )
    assert grant_filter(policy.grant(Access("79001", NOW)), labels_field="labels") == {
        "$or": [
            {"_hub.fac": "79001"},
            {"resourceType": {"$nin": ["Condition"]}},
            {"labels": {"$nin": [f"{ACT_CODE}|HIV"]}},
        ]
    }


def test_security_labels_in_stored_form() -> None:
    resource = {
        "resourceType": "Observation",
        "meta": {
            "security": [
                {"system": ACT_CODE, "code": "HIV"},
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
            ]
        },
    }
    assert security_labels(resource) == [
        f"{ACT_CODE}|HIV",
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
    ]
    assert security_labels({"resourceType": "Observation"}) == []


def test_mental_health_deny_stands_in_an_emergency() -> None:
    policy = Policy.from_consents([ALL_BUT_MENTAL_HEALTH], {}, "deny")
    grant = policy.grant(Access("79001", NOW, "ETREAT", break_glass=True))
    assert grant_filter(grant) == {
        "$or": [
            {"_hub.fac": "79001"},
            {"_hub.labels": {"$nin": [f"{ACT_CODE}|MH", f"{ACT_CODE}|PSY"]}},
        ]
    }


def test_examples_in_the_documentation_are_these() -> None:
    text = (Path(__file__).parents[2] / "docs" / "consent.md").read_text()
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]
    for example in examples:
        example.pop("category")  # FHIR requires it; the engine does not read it
    assert examples == [ALL_BUT_MENTAL_HEALTH, NOT_THIS_FACILITY]
