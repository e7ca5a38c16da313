"""Black-box tests of concurrent writes: versions are never lost or duplicated.

https://hl7.org/fhir/R4/http.html#concurrency
"""

import asyncio
from typing import Any

import httpx
from support import FHIR_JSON, patient, unique

SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    """Create a resource and return it as stored."""
    response = await client.post("/fhir/Patient", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def update(
    client: httpx.AsyncClient, resource: dict[str, Any], **headers: str
) -> httpx.Response:
    """PUT a resource to its own id."""
    url = f"/fhir/Patient/{resource['id']}"
    return await client.put(url, json=resource, headers={**FHIR_JSON, **headers})


async def versions(client: httpx.AsyncClient, rid: str) -> list[str]:
    """Return the versionIds of a resource's history, newest first."""
    response = await client.get(f"/fhir/Patient/{rid}/_history", params={"_count": 100})
    assert response.status_code == 200, response.text
    return [e["resource"]["meta"]["versionId"] for e in response.json()["entry"]]


async def search_total(client: httpx.AsyncClient, value: str) -> int:
    """Return how many Patients carry this identifier value."""
    response = await client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{value}"})
    return int(response.json()["total"])


async def test_same_if_match_lets_exactly_one_update_through(client: httpx.AsyncClient) -> None:
    """Two concurrent updates with If-Match W/"1": one answers 200, the other 412."""
    created = await create(client, patient())
    responses = await asyncio.gather(
        update(client, {**created, "gender": "female"}, **{"if-match": 'W/"1"'}),
        update(client, {**created, "gender": "other"}, **{"if-match": 'W/"1"'}),
    )
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (await client.get(f"/fhir/Patient/{created['id']}")).json()
    assert current["meta"]["versionId"] == "2"
    assert current["gender"] == winner["gender"]
    assert await versions(client, created["id"]) == ["2", "1"]


async def test_concurrent_updates_without_if_match_all_succeed(client: httpx.AsyncClient) -> None:
    """Ten concurrent updates without If-Match all succeed, making versions 2 to 11."""
    created = await create(client, patient())
    responses = await asyncio.gather(
        *(update(client, {**created, "birthDate": f"19{n:02d}-01-01"}) for n in range(10))
    )
    refused = [r.text for r in responses if r.status_code != 200]
    assert [r.status_code for r in responses] == [200] * 10, refused[:1]
    assert sorted(int(r.json()["meta"]["versionId"]) for r in responses) == list(range(2, 12))
    current = (await client.get(f"/fhir/Patient/{created['id']}")).json()
    assert current["meta"]["versionId"] == "11"
    assert await versions(client, created["id"]) == [str(v) for v in range(11, 0, -1)]


async def test_concurrent_creates_all_succeed(client: httpx.AsyncClient) -> None:
    """Twenty concurrent creates of distinct resources all succeed under distinct ids."""
    values = [unique() for _ in range(20)]
    responses = await asyncio.gather(
        *(client.post("/fhir/Patient", json=patient(v), headers=FHIR_JSON) for v in values)
    )
    assert [r.status_code for r in responses] == [201] * 20
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 20
    for value in values:
        assert await search_total(client, value) == 1


async def test_concurrent_conditional_creates_make_one_resource(client: httpx.AsyncClient) -> None:
    """Five concurrent creates with the same If-None-Exist leave exactly one resource."""
    value = unique()
    condition = {"if-none-exist": f"identifier={SYSTEM}|{value}"}
    responses = await asyncio.gather(
        *(
            client.post("/fhir/Patient", json=patient(value), headers={**FHIR_JSON, **condition})
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await search_total(client, value) == 1


async def test_concurrent_conditional_updates_make_one_resource(client: httpx.AsyncClient) -> None:
    """Five concurrent conditional updates matching nothing create one resource, not five."""
    value = unique()
    url = f"/fhir/Patient?identifier={SYSTEM}|{value}"
    responses = await asyncio.gather(
        *(client.put(url, json=patient(value), headers=FHIR_JSON) for _ in range(5))
    )
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert await search_total(client, value) == 1


async def test_concurrent_transactions_with_the_same_conditional_update_agree(
    client: httpx.AsyncClient,
) -> None:
    """Twenty transactions at once, each a conditional update of the same patient and a new
    Observation about it: all succeed (a retried one matches the winner's Patient, whatever
    its first attempt planned), one Patient, twenty Observations pointing at it."""
    value = unique()

    def bundle() -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:6f1c8e2a-0000-4000-8000-000000000001",
                    "resource": patient(value),
                    "request": {"method": "PUT", "url": f"Patient?identifier={SYSTEM}|{value}"},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": value},
                        "subject": {"reference": "urn:uuid:6f1c8e2a-0000-4000-8000-000000000001"},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        }

    responses = await asyncio.gather(
        *(client.post("/fhir", json=bundle(), headers=FHIR_JSON) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20, [r.text[:300] for r in responses]
    assert await search_total(client, value) == 1
    found = await client.get("/fhir/Patient", params={"identifier": f"{SYSTEM}|{value}"})
    pid = found.json()["entry"][0]["resource"]["id"]
    observations = await client.get("/fhir/Observation", params={"subject": f"Patient/{pid}"})
    assert observations.json()["total"] == 20
