"""A search without criteria lists a type's current resources newest first, a page at a time,
and a search across types without criteria is refused as too costly."""

import uuid
from typing import Any

import httpx
from support import FHIR_JSON, observation

FLAG_CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "105658004"}]}


def flag(subject: str) -> dict[str, Any]:
    """Return a valid Flag about a patient."""
    return {
        "resourceType": "Flag",
        "status": "active",
        "code": FLAG_CODE,
        "subject": {"reference": subject},
    }


async def walk(client: httpx.AsyncClient, url: str) -> list[str]:
    """Follow next links from a first page; return the ids in the order served."""
    ids: list[str] = []
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        ids += [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    return ids


async def test_listing_a_type_pages_newest_first_without_the_deleted(
    client: httpx.AsyncClient,
) -> None:
    """Every current Flag appears once, newer before older; a deleted one does not appear."""
    made = []
    for _ in range(5):
        created = await client.post("/fhir/Flag", json=flag("Patient/listing"), headers=FHIR_JSON)
        assert created.status_code == 201, created.text
        made.append(created.json()["id"])
    assert (await client.delete(f"/fhir/Flag/{made[2]}")).status_code == 204

    served = await walk(client, "/fhir/Flag?_count=2")

    ours = [i for i in served if i in made]
    assert ours == [made[4], made[3], made[1], made[0]]
    assert len(served) == len(set(served))


async def test_listing_gives_a_total_only_when_asked(client: httpx.AsyncClient) -> None:
    """Counting a whole type costs a read of it, so the total comes with _total=accurate."""
    await client.post("/fhir/Flag", json=flag("Patient/total"), headers=FHIR_JSON)
    plain = (await client.get("/fhir/Flag?_count=1")).json()
    counted = (await client.get("/fhir/Flag?_count=1&_total=accurate")).json()
    only_count = (await client.get("/fhir/Flag?_summary=count")).json()
    assert "total" not in plain
    assert counted["total"] >= 1
    assert only_count["total"] == counted["total"]
    assert only_count["entry"] == []


async def test_a_search_across_types_needs_a_criterion(client: httpx.AsyncClient) -> None:
    """GET /fhir?_type=… with no search parameter would read whole types: refused, 400."""
    response = await client.get("/fhir?_type=Patient,Flag&_count=5")
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "search parameter" in issue["diagnostics"]


async def test_a_forged_page_cursor_is_refused(client: httpx.AsyncClient) -> None:
    """A cursor the hub did not write is a 400 naming it, never a 500."""
    cursors = ["WyJub3RhZGF0ZSIsIngiXQ", "not-base64!", "W10"]  # ["notadate","x"], junk, []
    for cursor in cursors:
        for url in (
            f"/fhir/Flag?_after={cursor}",
            f"/fhir/Observation?status=final&_after={cursor}",
        ):
            response = await client.get(url)
            assert response.status_code == 400, (url, response.text)
            assert response.json()["issue"][0]["expression"] == ["_after"]


async def test_a_search_finding_too_many_candidates_is_refused(
    app: Any, client: httpx.AsyncClient
) -> None:
    """A search whose index lookup finds more than EHRHUB_MAX_SEARCH_CANDIDATES resources is
    refused as too costly, naming the type and how to narrow it; below the cap it is served."""
    subject = f"Patient/cap-{uuid.uuid4().hex[:8]}"
    for _ in range(4):
        await client.post("/fhir/Observation", json=observation(subject), headers=FHIR_JSON)
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"max_search_candidates": 3})
    try:
        refused = await client.get(f"/fhir/Observation?subject={subject}")
        app.state.settings = settings.model_copy(update={"max_search_candidates": 4})
        served = await client.get(f"/fhir/Observation?subject={subject}")
    finally:
        app.state.settings = settings
    assert refused.status_code == 400
    issue = refused.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "more than 3 resources" in issue["diagnostics"]
    assert served.status_code == 200
    assert served.json()["total"] == 4


async def test_a_narrower_clause_drives_when_the_first_finds_too_many(
    app: Any, client: httpx.AsyncClient
) -> None:
    """When the most selective-looking clause finds more than the cap, the next one drives."""
    subject = f"Patient/cap-{uuid.uuid4().hex[:8]}"
    code = uuid.uuid4().hex[:10]
    for i in range(4):
        extra = {"code": {"coding": [{"system": "urn:test", "code": code}]}} if i == 0 else {}
        await client.post(
            "/fhir/Observation", json=observation(subject, **extra), headers=FHIR_JSON
        )
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"max_search_candidates": 3})
    try:
        response = await client.get(f"/fhir/Observation?subject={subject}&code=urn:test|{code}")
    finally:
        app.state.settings = settings
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 1
