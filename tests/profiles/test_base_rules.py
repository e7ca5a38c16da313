"""The FHIR R4 base rules the pydantic models leave out: required code bindings and the JSON
type of primitive elements (`fhir_profiles/base`), alone and through the hub."""

from typing import Any

import httpx
import pytest
from support import FHIR_JSON, fixture_json, observation, patient

from fhir_profiles.base import base_problems
from fhir_profiles.base.rules import resource_tables
from hub.fhir.outcome import InvalidResource
from hub.fhir.validate import validate_resource


def paths(resource: dict[str, Any]) -> list[str]:
    """Return the paths of the elements that break a base rule."""
    return [path for path, _ in base_problems(resource)]


def test_every_resource_type_has_rules_read_once() -> None:
    """The rules cover every R4 resource type and are read from disk only once."""
    tables = resource_tables()
    assert len(tables) == 146
    assert tables["Patient"]["gender"][0] != tables["Patient"]["active"][0]
    assert resource_tables() is tables


@pytest.mark.parametrize(
    "resource",
    [
        patient(),
        observation("Patient/p1"),
        fixture_json("r4-examples", "Patient-example.json"),
        fixture_json("r4-examples", "Observation-example.json"),
    ],
)
def test_a_valid_resource_has_no_problems(resource: dict[str, Any]) -> None:
    assert base_problems(resource) == []


def test_a_wrong_code_of_a_resource_element_names_the_valueset_and_its_codes() -> None:
    assert base_problems(patient(gender="unknown-gender")) == [
        (
            "Patient.gender",
            "'unknown-gender' is not a code of AdministrativeGender: "
            "use one of male, female, other, unknown",
        )
    ]
    assert paths(observation("Patient/p1", status="done")) == ["Observation.status"]


def test_a_long_valueset_is_shown_in_part_with_its_url() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()}]}
    bundle["entry"][0]["resource"]["contained"] = [
        {"resourceType": "Task", "status": "done", "intent": "order"}
    ]
    [(path, message)] = base_problems(bundle)
    assert path == "Bundle.entry[0].resource.contained[0].status"
    assert message.startswith("'done' is not a code of TaskStatus: use one of draft, requested,")
    assert message.endswith(", ... (12 codes: http://hl7.org/fhir/ValueSet/task-status)")


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"name": [{"family": "Lê", "use": "nick"}]}, "Patient.name[0].use"),
        (
            {"generalPractitioner": [{"display": "Dr A"}, {"identifier": {"use": "primary"}}]},
            "Patient.generalPractitioner[1].identifier.use",
        ),
        ({"telecom": [{"system": "mobile", "value": "090"}]}, "Patient.telecom[0].system"),
        ({"text": {"status": "done", "div": "<div/>"}}, "Patient.text.status"),
        ({"contact": [{"gender": "m"}]}, "Patient.contact[0].gender"),
        ({"link": [{"other": {"reference": "Patient/2"}, "type": "same"}]}, "Patient.link[0].type"),
        (
            {"extension": [{"url": "http://x.org", "valueQuantity": {"comparator": "="}}]},
            "Patient.extension[0].valueQuantity.comparator",
        ),
    ],
)
def test_a_wrong_code_in_a_datatype_or_backbone_element(extra: dict[str, Any], path: str) -> None:
    assert paths(patient(**extra)) == [path]


def test_a_wrong_code_in_a_choice_element_of_a_backbone_element() -> None:
    resource = observation(
        "Patient/p1",
        component=[
            {"code": {"text": "systolic"}, "valueQuantity": {"value": 120}},
            {"code": {"text": "diastolic"}, "valueQuantity": {"value": 80, "comparator": "~"}},
        ],
    )
    assert paths(resource) == ["Observation.component[1].valueQuantity.comparator"]


def test_a_content_reference_follows_the_element_it_names() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "text?"}]}],
    }
    assert paths(questionnaire) == ["Questionnaire.item[0].item[0].type"]


def test_a_contained_resource_is_checked_by_its_own_type() -> None:
    resource = patient(contained=[{"resourceType": "Observation", "status": "done"}])
    assert paths(resource) == ["Patient.contained[0].status"]


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        ({"active": "off"}, "Patient.active", "Expected true or false here, not the string 'off'"),
        ({"active": "yes"}, "Patient.active", "not the string 'yes'"),
        ({"active": 1}, "Patient.active", "Expected true or false here, not the number 1"),
        ({"multipleBirthInteger": True}, "Patient.multipleBirthInteger", "not true"),
        ({"multipleBirthInteger": "2"}, "Patient.multipleBirthInteger", "not the string '2'"),
        ({"multipleBirthInteger": 2.0}, "Patient.multipleBirthInteger", "not the number 2.0"),
        ({"multipleBirthInteger": 2**31}, "Patient.multipleBirthInteger", "-2147483648"),
        ({"birthDate": 1985}, "Patient.birthDate", "Expected a JSON string here"),
        ({"name": [{"given": ["An", 7]}]}, "Patient.name[0].given[1]", "not the number 7"),
        ({"gender": 1}, "Patient.gender", "Expected a code of AdministrativeGender"),
    ],
)
def test_a_primitive_of_the_wrong_json_type(extra: dict[str, Any], path: str, message: str) -> None:
    [(found, said)] = base_problems(patient(**extra))
    assert found == path
    assert message in said


@pytest.mark.parametrize(
    ("value", "ok"), [(72.5, True), (72, True), ("72.5", False), (True, False), (None, True)]
)
def test_a_decimal_is_a_json_number(value: Any, ok: bool) -> None:
    resource = observation("Patient/p1")
    resource["valueQuantity"]["value"] = value
    assert paths(resource) == ([] if ok else ["Observation.valueQuantity.value"])


def test_positive_and_unsigned_integers_have_a_lower_bound() -> None:
    timing = {"repeat": {"count": 0, "offset": -1, "frequency": 1}}
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "paracetamol"},
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [{"timing": timing}],
    }
    assert base_problems(request) == [
        (
            "MedicationRequest.dosageInstruction[0].timing.repeat.count",
            "Expected an integer of 1 or more (positiveInt) here, not 0",
        ),
        (
            "MedicationRequest.dosageInstruction[0].timing.repeat.offset",
            "Expected an integer of 0 or more (unsignedInt) here, not -1",
        ),
    ]


def test_unknown_elements_and_primitive_extensions_are_left_to_pydantic() -> None:
    resource = patient(colour="red", _gender={"extension": []}, _active=3)
    assert base_problems(resource) == []


def test_validation_roots_the_paths_where_the_resource_is() -> None:
    with pytest.raises(InvalidResource) as refused:
        validate_resource(
            patient(gender="unknown-gender", active="off"), "Bundle.entry[2].resource"
        )
    assert [issue.expression for issue in refused.value.issues] == [
        ["Bundle.entry[2].resource.gender"],
        ["Bundle.entry[2].resource.active"],
    ]
    assert {issue.code for issue in refused.value.issues} == {"value"}


async def test_the_hub_refuses_a_wrong_code_naming_the_element(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/fhir/Patient", json=patient(gender="unknown-gender"), headers=FHIR_JSON
    )
    assert response.status_code == 400, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == ["Patient.gender"]
    assert issue["code"] == "value"
    assert "'unknown-gender' is not a code of AdministrativeGender" in issue["diagnostics"]
