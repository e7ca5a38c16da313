"""`$validate`: the OperationOutcome of a resource against the base model and a national
profile, by type and at the base, with the resource or a Parameters; nothing is stored."""

from typing import Any

import httpx

from tests.profiles.test_write_modes import bad_patient, good_patient, rules
from tests.support import FHIR_JSON

PATIENT_PROFILE = "https://moh.gov.vn/fhir/StructureDefinition/vn-patient"


async def count_patients(client: httpx.AsyncClient) -> int:
    response = await client.get("/fhir/Patient", params={"_summary": "count"})
    return int(response.json()["total"])


async def test_a_valid_patient_has_no_problems(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient/$validate", json=good_patient(), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    [issue] = response.json()["issue"]
    assert issue["severity"] == "information"
    assert "Patient (Vietnam)" in issue["diagnostics"]


async def test_findings_name_rule_path_and_what_to_do_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    before = await count_patients(client)
    response = await client.post("/fhir/Patient/$validate", json=bad_patient(), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    found = rules(response.json())
    assert found["vn-patient/Patient.birthDate/min"] == "Patient.birthDate"
    assert found["vn-cccd/citizen-id"] == "Patient.gender"
    assert await count_patients(client) == before


async def test_parameters_and_the_base_operation_take_a_profile(client: httpx.AsyncClient) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": bad_patient()},
            {"name": "profile", "valueUri": PATIENT_PROFILE},
        ],
    }
    for path in ("/fhir/$validate", "/fhir/Patient/$validate"):
        response = await client.post(path, json=parameters, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        assert "vn-patient/Patient.birthDate/min" in rules(response.json())
    by_query = await client.post(
        "/fhir/$validate", params={"profile": PATIENT_PROFILE}, json=good_patient()
    )
    assert by_query.json()["issue"][0]["severity"] == "information"


async def test_base_model_errors_are_reported_in_the_outcome(client: httpx.AsyncClient) -> None:
    broken = good_patient(gender="robot")
    response = await client.post("/fhir/Patient/$validate", json=broken, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    [issue] = response.json()["issue"]
    assert (issue["severity"], issue["expression"]) == ("error", ["Patient.gender"])


async def test_bad_requests_are_refused_with_what_is_wrong(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, Any, dict[str, str], int, str]] = [
        ("/fhir/Observation/$validate", good_patient(), {}, 400, "URL is for Observation"),
        ("/fhir/$validate", good_patient(), {"profile": "https://x.org/nope"}, 400, "not one"),
        (
            "/fhir/$validate",
            {"resourceType": "Observation"},
            {"profile": PATIENT_PROFILE},
            400,
            "is for Patient",
        ),
        (
            "/fhir/$validate",
            {"resourceType": "Parameters", "parameter": []},
            {},
            400,
            "no 'resource'",
        ),
        ("/fhir/$validate", [1], {}, 400, "expects a resource"),
        ("/fhir/Nonsense/$validate", good_patient(), {}, 404, "Unknown resource type"),
    ]
    for path, body, params, status, words in cases:
        response = await client.post(path, json=body, params=params, headers=FHIR_JSON)
        assert response.status_code == status, (path, response.text)
        assert words in response.json()["issue"][0]["diagnostics"], response.text
