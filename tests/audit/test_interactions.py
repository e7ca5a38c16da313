"""Every FHIR interaction leaves exactly one AuditEvent: subtype, action, outcome, agent and
entities (what was returned or written, and whose record it is). Real HTTP, real app."""

import base64
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from audit.helpers import Who, agent_id, caller, entities, events_of, subtype
from support import observation, patient, unique

RESOURCE = "4"
PATIENT = "1"


async def one_event(app: Any, who: Who, before: int) -> dict[str, Any]:
    """Return the one event the last request of `who` left, failing unless exactly one."""
    found = await events_of(app, who.client_id)
    assert len(found) == before + 1, [subtype(e) for e in found[before:]]
    return found[-1]


async def test_each_interaction_leaves_one_event(app: Any, client: httpx.AsyncClient) -> None:
    who = await caller(app, client, "facility")
    h = who.headers
    seen = 0

    async def check(response: httpx.Response, status: int, code: str, action: str) -> Any:
        nonlocal seen
        assert response.status_code == status, response.text
        event = await one_event(app, who, seen)
        seen += 1
        assert subtype(event) == code
        assert event["action"] == action
        assert event["type"]["code"] == "rest"
        assert event["outcome"] == ("0" if status < 400 else "4")
        assert agent_id(event) == who.client_id
        assert event["agent"][0]["requestor"] is True
        assert event["agent"][0]["type"]["coding"][0]["code"] == "facility"
        assert event["agent"][0]["location"]["identifier"]["value"]
        return event

    r = await client.post("/fhir/Patient", json=patient(), headers=h)
    e = await check(r, 201, "create", "C")
    pid = r.json()["id"]
    assert f"Patient/{pid}" in entities(e, RESOURCE) and f"Patient/{pid}" in entities(e, PATIENT)

    r = await client.post("/fhir/Observation", json=observation(f"Patient/{pid}"), headers=h)
    e = await check(r, 201, "create", "C")
    oid = r.json()["id"]
    assert entities(e, RESOURCE) == {f"Observation/{oid}"}
    assert entities(e, PATIENT) == {f"Patient/{pid}"}

    e = await check(await client.get(f"/fhir/Observation/{oid}", headers=h), 200, "read", "R")
    assert entities(e, PATIENT) == {f"Patient/{pid}"}
    e = await check(
        await client.get(f"/fhir/Observation/{oid}/_history/1", headers=h), 200, "vread", "R"
    )
    r = await client.get(f"/fhir/Observation?subject=Patient/{pid}", headers=h)
    e = await check(r, 200, "search-type", "E")
    assert entities(e, RESOURCE) == {f"Observation/{oid}"}
    assert entities(e, PATIENT) == {f"Patient/{pid}"}
    query = [x for x in e["entity"] if x.get("role", {}).get("code") == "24"][0]
    assert base64.b64decode(query["query"]).decode() == f"subject=Patient/{pid}"

    r = await client.post(
        "/fhir/Observation/_search",
        content=f"subject=Patient/{pid}",
        headers=h | {"content-type": "application/x-www-form-urlencoded"},
    )
    await check(r, 200, "search-type", "E")
    e = await check(
        await client.get(f"/fhir/Patient/{pid}/Observation", headers=h), 200, "search-type", "E"
    )
    assert f"Observation/{oid}" in entities(e, RESOURCE)
    e = await check(
        await client.get(f"/fhir/Patient/{pid}/$everything", headers=h), 200, "operation", "E"
    )
    assert e["subtype"][1]["display"] == "$everything"
    assert {f"Patient/{pid}", f"Observation/{oid}"} <= entities(e, RESOURCE)
    await check(
        await client.get(f"/fhir/Observation/{oid}/_history", headers=h),
        200,
        "history-instance",
        "R",
    )
    await check(
        await client.get("/fhir/Observation/_history?_count=1", headers=h),
        200,
        "history-type",
        "R",
    )
    r = await client.get(f"/fhir?_type=Observation&subject=Patient/{pid}", headers=h)
    await check(r, 200, "search-system", "E")

    changed = observation(f"Patient/{pid}", id=oid, status="amended")
    r = await client.put(f"/fhir/Observation/{oid}", json=changed, headers=h)
    e = await check(r, 200, "update", "U")
    assert entities(e, PATIENT) == {f"Patient/{pid}"}
    e = await check(await client.delete(f"/fhir/Observation/{oid}", headers=h), 204, "delete", "D")
    assert f"Observation/{oid}" in entities(e, RESOURCE)

    full = f"urn:uuid:{unique()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": full,
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": observation(full),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=h)
    e = await check(r, 200, "transaction", "E")
    written = {"/".join(x["response"]["location"].split("/")[:2]) for x in r.json()["entry"]}
    assert written <= entities(e, RESOURCE)
    [new_patient] = [w for w in written if w.startswith("Patient/")]
    assert entities(e, PATIENT) == {new_patient}
    bundle["type"] = "batch"
    bundle["entry"] = bundle["entry"][:1]
    await check(await client.post("/fhir", json=bundle, headers=h), 200, "batch", "E")


async def test_denials_are_audited(app: Any, client: httpx.AsyncClient) -> None:
    facility = await caller(app, client, "facility")
    r = await client.get(f"/fhir/Patient/{unique()}", headers=facility.headers)
    assert r.status_code == 404
    [event] = await events_of(app, facility.client_id)
    assert (subtype(event), event["outcome"]) == ("read", "4")
    assert "HTTP 404" in event["outcomeDesc"]
    assert len(entities(event, RESOURCE)) == 1

    clinician = await caller(app, client, "clinician")
    r = await client.post("/fhir/Patient", json=patient(), headers=clinician.headers)
    assert r.status_code == 403
    [event] = await events_of(app, clinician.client_id)
    assert (subtype(event), event["action"], event["outcome"]) == ("create", "C", "4")
    assert agent_id(event) == clinician.client_id

    path = f"/fhir/Patient/{unique()}"
    r = await client.get(path, headers={"authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    refused = [e for e in await events_of(app, None) if e["outcomeDesc"].endswith(path)]
    assert len(refused) == 1
    assert refused[0]["outcome"] == "4" and "HTTP 401" in refused[0]["outcomeDesc"]
    assert "identifier" not in refused[0]["agent"][0]["who"]


async def test_no_token_secret_or_body_is_stored(app: Any, client: httpx.AsyncClient) -> None:
    who = await caller(app, client, "facility")
    name = unique("Name")
    body = patient(name=[{"family": name}])
    r = await client.post("/fhir/Patient", json=body, headers=who.headers)
    assert r.status_code == 201
    await client.get(f"/fhir/Patient?access_token={who.token}&family={name}", headers=who.headers)
    found = await events_of(app, who.client_id)
    assert len(found) == 2
    stored = repr(found)
    for query in (e for x in found for e in x.get("entity", []) if "query" in e):
        stored += base64.b64decode(query["query"]).decode()
    assert who.token not in stored and who.secret not in stored
    assert who.token.split(".")[1] not in stored  # nor the token's claims
    assert body["identifier"][0]["value"] not in stored
    assert f"family={name}" in stored  # the query string is kept, the body is not
    assert "access_token=%2A%2A%2A" in stored


# Every parameter that could carry a credential, spelled as the hub's SECRET_PARAMS are, and
# one in capitals: each is checked on its own, so that a list left short fails here.
CREDENTIAL_PARAMS = [
    "access_token",
    "token",
    "client_secret",
    "client_assertion",
    "password",
    "code",
    "CLIENT_SECRET",
]


@pytest.mark.parametrize("name", CREDENTIAL_PARAMS)
async def test_credentials_in_the_query_are_blanked(
    app: Any, client: httpx.AsyncClient, name: str
) -> None:
    who = await caller(app, client, "facility")
    auditor = await caller(app, client, "auditor")
    secret = unique("s3cret")
    await client.get(
        f"/fhir/Observation?subject=Patient/x1&{name}={secret}&_count=1", headers=who.headers
    )
    [stored] = await events_of(app, who.client_id)
    assert secret not in repr(stored)
    r = await client.get(f"/fhir/AuditEvent/{stored['id']}", headers=auditor.headers)
    [query] = [e["query"] for e in r.json()["entity"] if "query" in e]
    recorded = base64.b64decode(query).decode()
    assert secret not in recorded
    assert parse_qsl(recorded) == [("subject", "Patient/x1"), (name, "***"), ("_count", "1")]


async def test_what_a_batch_read_or_search_returns_is_listed(
    app: Any, client: httpx.AsyncClient
) -> None:
    facility = await caller(app, client, "facility")
    held = await client.post("/fhir/Patient", json=patient(), headers=facility.headers)
    patient_id = held.json()["id"]
    written = await client.post(
        "/fhir/Observation", json=observation(f"Patient/{patient_id}"), headers=facility.headers
    )
    observation_id = written.json()["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation?patient=Patient/{patient_id}"}},
            {"request": {"method": "GET", "url": f"Observation/{observation_id}/_history"}},
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=facility.headers)
    assert response.status_code == 200, response.text
    [event] = [e for e in await events_of(app, facility.client_id) if subtype(e) == "batch"]
    assert f"Observation/{observation_id}" in entities(event, "4")
    assert f"Patient/{patient_id}" in entities(event, "1")
