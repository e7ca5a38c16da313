"""Record.of: the facts a provision may name, read from the resource JSON."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consent import Record

EXAMPLES = Path(__file__).parents[1] / "fixtures" / "r4-examples"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"


def test_record_of_an_official_observation() -> None:
    observation = json.loads((EXAMPLES / "Observation-example.json").read_text())
    record = Record.of(observation, "79002")
    assert record.key == "Observation/example"
    assert record.facility == "79002" and record.resource_type == "Observation"
    assert record.references == {"Patient/example", "Encounter/example"}
    assert record.codes == {
        (LOINC, "29463-7"),
        (LOINC, "3141-9"),
        ("http://snomed.info/sct", "27113001"),
        ("http://acme.org/devices/clinical-codes", "body-weight"),
        ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs"),
    }
    # valueQuantity's unit (UCUM "kg") is not a Coding.
    assert ("http://unitsofmeasure.org", "kg") not in record.codes
    assert record.period is None and record.labels == frozenset()


def test_references_anywhere_literal_and_relative_only() -> None:
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": "r1",
        "subject": {"reference": "Patient/p1"},
        "basedOn": [{"reference": "ServiceRequest/s1/_history/3"}],
        "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}],
        "extension": [{"url": "x", "valueReference": {"reference": "Encounter/e1"}}],
        "contained": [
            {"resourceType": "Specimen", "id": "sp", "parent": [{"reference": "Specimen/s9"}]}
        ],
        "specimen": [{"reference": "#sp"}],
        "performer": [
            {"reference": "https://other.example/fhir/Organization/o1"},
            {"reference": "urn:uuid:4b0f5b2e-0000-0000-0000-000000000000"},
            {"identifier": {"system": "urn:x", "value": "1"}},
        ],
    }
    record = Record.of(resource, "79001")
    assert record.key == "DiagnosticReport/r1"
    assert record.references == {
        "Patient/p1",
        "ServiceRequest/s1",
        "Observation/o1",
        "Observation/o2",
        "Encounter/e1",
        "Specimen/s9",
    }


def test_codes_exclude_the_security_labels_only() -> None:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "meta": {
            "security": [{"system": ACT_CODE, "code": "PSY"}],
            "tag": [{"system": "urn:tags", "code": "imported"}],
        },
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.1"}]},
        "contained": [
            {
                "resourceType": "Observation",
                "meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]},
                "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA6576-8"}]},
            }
        ],
        "extension": [{"url": "x", "valueCoding": {"system": "urn:local", "code": "7"}}],
        "note": [{"text": "code without a system is no Coding", "code": "x"}],
    }
    record = Record.of(resource, "79001")
    assert record.labels == {(ACT_CODE, "PSY")}
    assert record.codes == {
        ("urn:tags", "imported"),
        ("http://hl7.org/fhir/sid/icd-10", "F32.1"),
        (LOINC, "LA6576-8"),
        ("urn:local", "7"),
    }
    assert record.key == ""  # no id


def test_record_of_takes_the_period_the_hub_computed() -> None:
    start = datetime(2026, 3, 1, 17, tzinfo=UTC)
    period = (start, start + timedelta(days=1))
    record = Record.of({"resourceType": "Encounter", "id": "e1"}, "79001", period=period)
    assert record.period == period


def test_the_old_constructor_still_works() -> None:
    record = Record("79002", "Condition", frozenset({(ACT_CODE, "HIV")}))
    assert record.key == "" and record.references == frozenset() and record.period is None


@pytest.mark.parametrize(
    ("period", "problem"),
    [
        ((datetime(2026, 1, 1), datetime(2026, 1, 2)), "time zone"),
        ((datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)), "ends before"),
    ],
)
def test_a_period_must_be_zoned_and_in_order(
    period: tuple[datetime, datetime], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Record("79001", "Encounter", period=period)
