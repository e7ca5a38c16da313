"""Black-box tests of the transaction and batch interactions.

https://hl7.org/fhir/R4/http.html#transaction
"""

import uuid
from typing import Any

import httpx
import pytest
from support import FHIR_JSON, FIXTURES, fixture_json, observation, patient, references, unique

SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
SYNTHEA = sorted(path.name for path in (FIXTURES / "synthea").glob("*.json"))


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    """Return a transaction (or batch) Bundle of these entries."""
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    """Return an entry that POSTs a resource to its type."""
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(resource: dict[str, Any], url: str | None = None) -> dict[str, Any]:
    """Return an entry that PUTs a resource to Type/id (or to `url`)."""
    url = url or f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def request(method: str, url: str) -> dict[str, Any]:
    """Return an entry without a resource: GET or DELETE."""
    return {"request": {"method": method, "url": url}}


def urn() -> str:
    """Return a fresh urn:uuid fullUrl."""
    return f"urn:uuid:{uuid.uuid4()}"


def token(value: str) -> str:
    """Return the identifier search token of a value in the test system."""
    return f"{SYSTEM}|{value}"


def location_id(entry: dict[str, Any]) -> str:
    """Return the resource id in a transaction-response entry's location."""
    return str(entry["response"]["location"].split("/")[1])


async def send(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> httpx.Response:
    """POST a Bundle to the base."""
    return await client.post("/fhir", json=body, headers={**FHIR_JSON, **headers})


async def search_total(
    client: httpx.AsyncClient, value: str, resource_type: str = "Patient"
) -> int:
    """Return how many resources carry this identifier value, by searching."""
    response = await client.get(f"/fhir/{resource_type}", params={"identifier": token(value)})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def assert_outcome(
    response: httpx.Response, status: int, where: str | None = None
) -> dict[str, Any]:
    """Check an OperationOutcome error response; `where` must start one issue's expression."""
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = outcome["issue"]
    assert all(i["severity"] and i["code"] and i["diagnostics"] for i in issues)
    if where is not None:
        expressions = [e for i in issues for e in i.get("expression", [])]
        assert any(e.startswith(where) for e in expressions), expressions
    return outcome


# Synthea


@pytest.fixture(scope="module")
async def synthea(client: httpx.AsyncClient) -> list[tuple[dict[str, Any], httpx.Response]]:
    """Send every Synthea bundle once; return each with its response."""
    sent = []
    for name in SYNTHEA:
        body = fixture_json("synthea", name)
        sent.append((body, await send(client, body)))
    return sent


async def test_synthea_bundles_go_in_whole(synthea: list) -> None:
    """Every Synthea transaction answers 200 with one 201 Created entry per resource."""
    total = 0
    for body, response in synthea:
        assert response.status_code == 200, response.text[:500]
        answer = response.json()
        assert answer["type"] == "transaction-response"
        assert len(answer["entry"]) == len(body["entry"])
        assert {e["response"]["status"] for e in answer["entry"]} == {"201 Created"}
        total += len(answer["entry"])
    assert total == 2466


async def test_synthea_references_point_at_stored_resources(app: Any, synthea: list) -> None:
    """Each urn:uuid reference is stored as Type/id of the entry it named, which exists."""
    resources = app.state.mongo.resources
    for body, response in synthea:
        locations = [e["response"]["location"] for e in response.json()["entry"]]
        stored_key = {
            e["fullUrl"]: loc.split("/_history/")[0]
            for e, loc in zip(body["entry"], locations, strict=True)
        }
        keys = list(stored_key.values())
        stored = {doc["_id"]: doc async for doc in resources.find({"_id": {"$in": keys}})}
        assert len(stored) == len(keys)
        for entry in body["entry"]:
            doc = stored[stored_key[entry["fullUrl"]]]
            expected = sorted(stored_key.get(r, r) for r in references(entry["resource"]))
            assert sorted(references(doc)) == expected
        targets = {r for doc in stored.values() for r in references(doc) if not r.startswith("#")}
        assert targets <= set(stored), f"references to nothing stored: {targets - set(stored)}"


async def test_synthea_observation_subject_can_be_read(
    client: httpx.AsyncClient, synthea: list
) -> None:
    """A stored Observation's subject reference reads as the stored Patient."""
    body, response = synthea[0]
    index = next(
        i for i, e in enumerate(body["entry"]) if e["resource"]["resourceType"] == "Observation"
    )
    oid = location_id(response.json()["entry"][index])
    stored = await client.get(f"/fhir/Observation/{oid}")
    assert stored.status_code == 200
    subject = stored.json()["subject"]["reference"]
    assert subject.startswith("Patient/")
    read = await client.get(f"/fhir/{subject}")
    assert read.status_code == 200 and read.json()["resourceType"] == "Patient"


# all or nothing


@pytest.mark.parametrize(
    "invalid, where",
    [
        ({"status": 123}, "Bundle.entry[4].resource.status"),
        ({"colour": "red"}, "Bundle.entry[4].resource.colour"),
    ],
    ids=["wrong-type", "unknown-element"],
)
async def test_invalid_fifth_entry_rejects_the_whole_transaction(
    client: httpx.AsyncClient, app: Any, invalid: dict[str, Any], where: str
) -> None:
    """A transaction whose 5th entry is invalid answers 400 naming it, and writes nothing."""
    values = [unique() for _ in range(4)]
    entries = [post(patient(v), urn()) for v in values]
    entries.append(post(observation(entries[0]["fullUrl"], **invalid)))
    response = await send(client, bundle(*entries))
    assert_outcome(response, 400, where)
    for value in values:
        assert await search_total(client, value) == 0
        assert await app.state.mongo.resources.count_documents({"identifier.value": value}) == 0


async def test_failing_get_undoes_the_writes_before_it(client: httpx.AsyncClient, app: Any) -> None:
    """A transaction failing at its GET entry, after its writes, leaves nothing written."""
    value = unique()
    response = await send(
        client, bundle(post(patient(value)), request("GET", f"Patient/{unique()}"))
    )
    assert_outcome(response, 404, "Bundle.entry[1]")
    assert await search_total(client, value) == 0
    assert await app.state.mongo.resources.count_documents({"identifier.value": value}) == 0


# conditional create in a transaction


def conditional_bundle(values: list[str]) -> dict[str, Any]:
    """Return a transaction of Patients and an Organization, each with ifNoneExist."""
    entries = [post(patient(v), urn(), ifNoneExist=f"identifier={token(v)}") for v in values]
    organization = {
        "resourceType": "Organization",
        "identifier": [{"system": SYSTEM, "value": values[0]}],
        "name": "Bệnh viện Bạch Mai",
    }
    entries.append(post(organization, urn(), ifNoneExist=f"identifier={token(values[0])}"))
    return bundle(*entries)


async def test_resending_if_none_exist_bundle_creates_nothing(client: httpx.AsyncClient) -> None:
    """Sending a bundle of ifNoneExist entries twice: the second answers 200 OK, nothing new."""
    values = [unique() for _ in range(3)]
    body = conditional_bundle(values)
    first = await send(client, body)
    second = await send(client, body)
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert {e["response"]["status"] for e in first.json()["entry"]} == {"201 Created"}
    assert {e["response"]["status"] for e in second.json()["entry"]} == {"200 OK"}
    for value in values:
        assert await search_total(client, value) == 1
    assert await search_total(client, values[0], "Organization") == 1


async def test_matched_if_none_exist_entries_give_their_location(client: httpx.AsyncClient) -> None:
    """An ifNoneExist entry that matched answers with the location of the resource it matched."""
    body = conditional_bundle([unique() for _ in range(3)])
    first = (await send(client, body)).json()["entry"]
    second = (await send(client, body)).json()["entry"]
    assert [e["response"].get("location") for e in second] == [
        e["response"]["location"] for e in first
    ]


# processing


async def test_urn_uuid_references_are_rewritten(client: httpx.AsyncClient) -> None:
    """A reference to another entry's urn:uuid fullUrl is stored as Type/id of that entry."""
    subject = urn()
    response = await send(client, bundle(post(observation(subject)), post(patient(), subject)))
    assert response.status_code == 200, response.text
    observation_entry, patient_entry = response.json()["entry"]
    stored = (await client.get(f"/fhir/Observation/{location_id(observation_entry)}")).json()
    assert stored["subject"]["reference"] == f"Patient/{location_id(patient_entry)}"


async def test_response_entries_carry_status_location_and_etag(client: httpx.AsyncClient) -> None:
    """transaction-response entries follow the request order with status, location and etag."""
    existing = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
    doomed = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
    new_id = unique("pt-")
    response = await send(
        client,
        bundle(
            post(patient()),
            put({**existing, "gender": "female"}),
            put(patient(id=new_id)),
            request("DELETE", f"Patient/{doomed['id']}"),
        ),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    created, updated, put_created, deleted = (e["response"] for e in answer["entry"])
    assert created["status"] == "201 Created" and created["etag"] == 'W/"1"'
    assert created["location"].startswith("Patient/") and created["location"].endswith(
        "/_history/1"
    )
    assert updated["status"] == "200 OK" and updated["etag"] == 'W/"2"'
    assert put_created["status"] == "201 Created"
    assert put_created["location"] == f"Patient/{new_id}/_history/1"
    assert deleted["status"] == "204 No Content"
    assert (await client.get(f"/fhir/Patient/{existing['id']}")).json()["gender"] == "female"
    assert (await client.get(f"/fhir/Patient/{new_id}")).status_code == 200
    assert (await client.get(f"/fhir/Patient/{doomed['id']}")).status_code == 410


async def test_prefer_representation_returns_resources(client: httpx.AsyncClient) -> None:
    """With Prefer: return=representation, transaction-response entries carry the resources."""
    response = await send(client, bundle(post(patient())), prefer="return=representation")
    [entry] = response.json()["entry"]
    assert entry["resource"]["resourceType"] == "Patient"
    assert entry["resource"]["id"] == location_id(entry)


async def test_delete_and_post_in_one_bundle(client: httpx.AsyncClient) -> None:
    """A DELETE and a POST in one transaction both happen; answers keep the request order."""
    doomed = (await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)).json()
    value = unique()
    response = await send(
        client, bundle(post(patient(value)), request("DELETE", f"Patient/{doomed['id']}"))
    )
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "204 No Content"]
    assert (await client.get(f"/fhir/Patient/{doomed['id']}")).status_code == 410
    assert await search_total(client, value) == 1


async def test_deletes_are_processed_before_conditional_posts(client: httpx.AsyncClient) -> None:
    """DELETEs come first: a POST whose ifNoneExist matches only the deleted resource creates.

    https://hl7.org/fhir/R4/http.html#trules: DELETE, then POST, then PUT, then GET.
    """
    value = unique()
    old = (await client.post("/fhir/Patient", json=patient(value), headers=FHIR_JSON)).json()
    response = await send(
        client,
        bundle(
            post(patient(value), ifNoneExist=f"identifier={token(value)}"),
            request("DELETE", f"Patient?identifier={token(value)}"),
        ),
    )
    assert response.status_code == 200, response.text
    created, deleted = response.json()["entry"]
    assert created["response"]["status"] == "201 Created"
    assert location_id(created) != old["id"]
    assert (await client.get(f"/fhir/Patient/{old['id']}")).status_code == 410
    assert await search_total(client, value) == 1


async def test_get_entry_reads_what_the_transaction_put(client: httpx.AsyncClient) -> None:
    """GET entries run last: a GET of a resource PUT in the same transaction returns it."""
    rid = unique("pt-")
    response = await send(client, bundle(request("GET", f"Patient/{rid}"), put(patient(id=rid))))
    assert response.status_code == 200, response.text
    got, written = response.json()["entry"]
    assert got["response"]["status"] == "200 OK"
    assert got["resource"]["id"] == rid
    assert written["response"]["status"] == "201 Created"


async def test_get_search_entry_sees_what_the_transaction_posted(client: httpx.AsyncClient) -> None:
    """GET entries run last: a search entry finds a resource POSTed in the same transaction."""
    value = unique()
    response = await send(
        client,
        bundle(request("GET", f"Patient?identifier={token(value)}"), post(patient(value))),
    )
    assert response.status_code == 200, response.text
    searchset = response.json()["entry"][0]["resource"]
    assert searchset["type"] == "searchset"
    assert searchset["total"] == 1


async def test_dangling_urn_uuid_reference_is_400(client: httpx.AsyncClient) -> None:
    """A urn:uuid reference to no entry of the bundle answers 400 naming the entry."""
    value = unique()
    response = await send(client, bundle(post(patient(value)), post(observation(urn()))))
    assert_outcome(response, 400, "Bundle.entry[1]")
    assert await search_total(client, value) == 0


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "new"])
async def test_two_entries_on_one_resource_is_400(client: httpx.AsyncClient, exists: bool) -> None:
    """Two entries touching the same resource answer 400, and neither happens."""
    rid = unique("pt-")
    if exists:
        await client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers=FHIR_JSON)
    response = await send(
        client, bundle(put(patient(id=rid, gender="female")), request("DELETE", f"Patient/{rid}"))
    )
    assert_outcome(response, 400, "Bundle.entry[")
    current = await client.get(f"/fhir/Patient/{rid}")
    if exists:
        assert current.json()["meta"]["versionId"] == "1" and current.json()["gender"] == "male"
    else:
        assert current.status_code == 404


async def test_unknown_resource_type_names_the_entry(client: httpx.AsyncClient) -> None:
    """An entry of an unknown resource type fails the transaction, naming that entry."""
    value = unique()
    response = await send(
        client, bundle(post(patient(value)), post({"resourceType": "Spaceship", "name": "x"}))
    )
    outcome = assert_outcome(response, 404, "Bundle.entry[1]")
    assert "Spaceship" in outcome["issue"][0]["diagnostics"]
    assert await search_total(client, value) == 0


# batch


async def test_batch_entries_succeed_or_fail_on_their_own(client: httpx.AsyncClient) -> None:
    """In a batch an invalid entry gets its own 400 outcome while the others are written."""
    good = [unique(), unique()]
    response = await send(
        client,
        bundle(
            post(patient(good[0])),
            post(patient(birthDate="1990-13-45")),
            post(patient(good[1])),
            kind="batch",
        ),
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "batch-response"
    first, bad, last = (e["response"] for e in answer["entry"])
    assert first["status"] == last["status"] == "201 Created"
    assert bad["status"].startswith("400")
    issue = bad["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.birthDate"]
    for value in good:
        assert await search_total(client, value) == 1


async def test_batch_get_of_type_history(client: httpx.AsyncClient) -> None:
    """A batch GET entry may ask for a type's history, as GET /fhir/Patient/_history can."""
    response = await send(client, bundle(request("GET", "Patient/_history?_count=1"), kind="batch"))
    assert response.status_code == 200, response.text
    [entry] = response.json()["entry"]
    assert entry["response"]["status"] == "200 OK", entry
    assert entry["resource"]["type"] == "history"


# malformed bundles


async def test_searchset_bundle_is_refused(client: httpx.AsyncClient) -> None:
    """POSTing a Bundle that is neither transaction nor batch answers 400 naming Bundle.type."""
    response = await send(client, bundle(post(patient()), kind="searchset"))
    assert_outcome(response, 400, "Bundle.type")


async def test_non_bundle_to_base_is_refused(client: httpx.AsyncClient) -> None:
    """POSTing a Patient to the base answers 400."""
    assert_outcome(await send(client, patient()), 400)


@pytest.mark.parametrize(
    "entry, where",
    [
        ("not an object", "Bundle.entry[0]"),
        ({"resource": patient()}, "Bundle.entry[0].request"),
        ({"request": {"method": "PATCH", "url": "Patient/x"}}, "Bundle.entry[0].request.method"),
        ({"request": {"method": "GET"}}, "Bundle.entry[0].request.url"),
        ({"request": {"method": "POST", "url": "Patient"}}, "Bundle.entry[0]"),
        (
            {"resource": [], "request": {"method": "POST", "url": "Patient"}},
            "Bundle.entry[0].resource",
        ),
        (post(patient(), url="Observation"), "Bundle.entry[0].resource.resourceType"),
        (post(patient(), ifNoneExist="nickname=x"), "Bundle.entry[0].request.ifNoneExist"),
        (post(patient(), ifNoneExist=5), "Bundle.entry[0].request.ifNoneExist"),
        (
            {
                "resource": patient(id="a"),
                "request": {"method": "PUT", "url": "Patient/a", "ifMatch": 5},
            },
            "Bundle.entry[0].request.ifMatch",
        ),
        (put(patient(id="a"), url="Patient/b"), "Bundle.entry[0].resource.id"),
        (request("DELETE", "Patient"), "Bundle.entry[0].request.url"),
        (request("GET", "http://elsewhere.example/fhir/Patient/1"), "Bundle.entry[0].request.url"),
    ],
    ids=[
        "entry-string",
        "no-request",
        "patch",
        "no-url",
        "post-without-resource",
        "resource-array",
        "type-mismatch",
        "unsupported-criterion",
        "if-none-exist-number",
        "if-match-number",
        "put-id-mismatch",
        "delete-type",
        "foreign-url",
    ],
)
async def test_malformed_entries_are_400_naming_the_entry(
    lenient: httpx.AsyncClient, entry: Any, where: str
) -> None:
    """A malformed entry answers 400 with an expression under Bundle.entry[0], never 5xx."""
    response = await send(lenient, bundle(entry))
    assert_outcome(response, 400, where)
