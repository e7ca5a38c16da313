"""Black-box tests of the CapabilityStatement and the operational endpoints.

https://hl7.org/fhir/R4/http.html#capabilities
"""

from typing import Any

import httpx
import pytest
from support import FHIR_JSON, patient

from hub.fhir.resource_types import COMPUTED, R4_RESOURCE_TYPES


@pytest.fixture
async def statement(client: httpx.AsyncClient) -> dict[str, Any]:
    """Return the hub's CapabilityStatement."""
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    return dict(response.json())


def listed(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the statement's resource entries by type."""
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


async def test_statement_is_fhir_r4(statement: dict[str, Any]) -> None:
    """The CapabilityStatement is for FHIR 4.0.1, a server instance speaking JSON."""
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    assert statement["implementation"]["url"] == "http://hub.test/fhir"
    assert statement["rest"][0]["mode"] == "server"


async def test_statement_lists_transaction_and_batch(statement: dict[str, Any]) -> None:
    """The system interactions transaction and batch are listed."""
    codes = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert {"transaction", "batch"} <= codes


async def test_listed_patient_interactions_are_served(
    client: httpx.AsyncClient, statement: dict[str, Any]
) -> None:
    """Every interaction the statement lists for Patient answers successfully."""
    codes = {i["code"] for i in listed(statement)["Patient"]["interaction"]}
    assert codes == {
        "read",
        "vread",
        "update",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    rid = created.json()["id"]
    served = {
        "create": created,
        "read": await client.get(f"/fhir/Patient/{rid}"),
        "vread": await client.get(f"/fhir/Patient/{rid}/_history/1"),
        "update": await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers=FHIR_JSON),
        "history-instance": await client.get(f"/fhir/Patient/{rid}/_history"),
        "history-type": await client.get("/fhir/Patient/_history?_count=1"),
        "search-type": await client.get(f"/fhir/Patient?_id={rid}"),
        "delete": await client.delete(f"/fhir/Patient/{rid}"),
    }
    assert {code: r.status_code for code, r in served.items()} == {
        "create": 201,
        "read": 200,
        "vread": 200,
        "update": 200,
        "history-instance": 200,
        "history-type": 200,
        "search-type": 200,
        "delete": 204,
    }
    assert served["search-type"].json()["total"] == 1


async def test_transaction_and_batch_are_served(client: httpx.AsyncClient) -> None:
    """Empty transaction and batch Bundles answer 200 with a response Bundle of their kind."""
    for kind in ("transaction", "batch"):
        body = {"resourceType": "Bundle", "type": kind, "entry": []}
        response = await client.post("/fhir", json=body, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == f"{kind}-response"


def reader(
    resource_type: str, client: httpx.AsyncClient, auditor: httpx.AsyncClient
) -> httpx.AsyncClient:
    """Return the client that may read a type: the audit trail is for auditors."""
    return auditor if resource_type == "AuditEvent" else client


async def test_every_listed_type_is_served(
    client: httpx.AsyncClient,
    auditor: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    statement: dict[str, Any],
) -> None:
    """Every listed type answers the interactions it lists (type history, search by _id): the
    statement tells the truth. The measures, computed, are read by admins and the ministry."""
    types = listed(statement)
    assert "Patient" in types and "Observation" in types
    failures = {}
    for resource_type, entry in types.items():
        caller = admin if resource_type in COMPUTED else reader(resource_type, client, auditor)
        codes = {i["code"] for i in entry["interaction"]}
        statuses = []
        if "history-type" in codes:
            statuses.append(
                (await caller.get(f"/fhir/{resource_type}/_history?_count=1")).status_code
            )
        if resource_type != "MeasureReport":
            statuses.append((await caller.get(f"/fhir/{resource_type}?_id=none")).status_code)
        else:
            statuses.append((await caller.get(f"/fhir/{resource_type}")).status_code)
        if set(statuses) != {200}:
            failures[resource_type] = statuses
    assert not failures


async def test_unlisted_types_are_not_served(
    client: httpx.AsyncClient, statement: dict[str, Any]
) -> None:
    """R4 types missing from the statement (Bundle, MedicinalProduct, ...) answer 404."""
    unlisted = R4_RESOURCE_TYPES - set(listed(statement))
    assert {"Bundle", "OperationOutcome", "Parameters", "MedicinalProduct"} <= unlisted
    for resource_type in sorted(unlisted):
        response = await client.get(f"/fhir/{resource_type}/_history")
        assert response.status_code == 404, resource_type


# operations


async def test_healthz(client: httpx.AsyncClient) -> None:
    """/healthz answers 200 while the process runs."""
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_readyz(client: httpx.AsyncClient) -> None:
    """/readyz answers 200 when the database answers."""
    response = await client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"


async def test_metrics_count_requests_by_route(
    client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """/metrics counts requests by route template, never by resource id; only for admins."""
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    rid = created.json()["id"]
    await client.get(f"/fhir/Patient/{rid}")
    assert (await client.get("/metrics")).status_code == 403  # a facility system
    response = await admin.get("/metrics")
    assert response.status_code == 200
    assert "ehrhub_http_requests_total" in response.text
    assert 'route="/fhir/{resource_type}/{resource_id}",status="200"' in response.text
    assert rid not in response.text


async def test_docs(client: httpx.AsyncClient) -> None:
    """/docs and the OpenAPI document it shows answer 200."""
    assert (await client.get("/docs")).status_code == 200
    openapi = await client.get("/openapi.json")
    assert openapi.status_code == 200
    assert "/fhir/{resource_type}/{resource_id}" in openapi.json()["paths"]


async def test_every_listed_search_parameter_is_honoured(
    client: httpx.AsyncClient, auditor: httpx.AsyncClient, statement: dict[str, Any]
) -> None:
    """Each search parameter the statement lists is accepted under `handling=strict`, and a
    parameter it does not list is refused: the statement claims nothing the hub lacks."""
    strict = {"prefer": "handling=strict"}
    checked = 0
    for resource in statement["rest"][0]["resource"]:
        if resource["type"] in COMPUTED:  # not stored: tested in tests/reporting/test_measures.py
            continue
        for param in resource.get("searchParam", []):
            url = f"/fhir/{resource['type']}?{param['name']}:missing=false&_summary=count"
            response = await reader(resource["type"], client, auditor).get(url, headers=strict)
            assert response.status_code == 200, (url, response.text)
            checked += 1
    assert checked > 1000
    refused = await client.get("/fhir/Patient?nickname=x", headers=strict)
    assert refused.status_code == 400


async def test_patient_everything_is_listed(statement: dict[str, Any]) -> None:
    """The statement lists $everything on Patient, system search and the include targets."""
    patient_entry = listed(statement)["Patient"]
    assert [op["name"] for op in patient_entry["operation"]] == ["everything", "validate"]
    assert "Observation:subject" in patient_entry["searchRevInclude"]
    assert "Patient:organization" in patient_entry["searchInclude"]
    codes = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert "search-system" in codes


async def test_validate_and_the_national_profiles_are_listed(
    client: httpx.AsyncClient, statement: dict[str, Any]
) -> None:
    """Every type clients write lists $validate, which is served; the types the country pack
    profiles list their profile, which $validate names."""
    types = listed(statement)
    assert [op["name"] for op in statement["rest"][0]["operation"]] == ["validate"]
    written = [e for t, e in types.items() if t != "AuditEvent" and t not in COMPUTED]
    assert all("validate" in [op["name"] for op in e["operation"]] for e in written)
    profiled = {t: e["supportedProfile"][0] for t, e in types.items() if "supportedProfile" in e}
    assert profiled["Condition"] == "https://moh.gov.vn/fhir/StructureDefinition/vn-condition"
    assert len(profiled) == 9
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/x"}}
    answer = await client.post("/fhir/Condition/$validate", json=condition)
    assert answer.status_code == 200
    assert any("Condition.code" in i["expression"] for i in answer.json()["issue"])
