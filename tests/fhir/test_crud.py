"""Black-box tests of the FHIR REST interactions on single resources and their history.

https://hl7.org/fhir/R4/http.html
"""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from support import FHIR_JSON, patient, unique

SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"


def basic(tag: str) -> dict[str, Any]:
    """Return a valid Basic resource tagged with `tag`: history tests use a type of their own."""
    return {"resourceType": "Basic", "code": {"text": tag}}


def token(value: str) -> str:
    """Return the identifier search token of a value in the test system."""
    return f"{SYSTEM}|{value}"


def assert_no_internal_fields(response: httpx.Response) -> None:
    """Fail if the store's internal fields appear anywhere in the response."""
    assert '"_hub"' not in response.text
    assert '"_id"' not in response.text

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert "_hub" not in node and "_id" not in node, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if response.content:
        walk(response.json())


def assert_outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check that the response is an OperationOutcome error with this status; return it."""
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(i["severity"] and i["code"] and i["diagnostics"] for i in outcome["issue"])
    return outcome


async def create(
    client: httpx.AsyncClient, resource: dict[str, Any], **headers: str
) -> httpx.Response:
    """POST a resource to its type and check that it was created."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers={**FHIR_JSON, **headers}
    )
    assert response.status_code == 201, response.text
    return response


async def put(
    client: httpx.AsyncClient, url: str, resource: dict[str, Any], **headers: str
) -> httpx.Response:
    """PUT a resource to a URL below /fhir."""
    return await client.put(f"/fhir/{url}", json=resource, headers={**FHIR_JSON, **headers})


async def search_total(client: httpx.AsyncClient, value: str) -> int:
    """Return how many Patients carry this identifier value, by searching."""
    response = await client.get("/fhir/Patient", params={"identifier": token(value)})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


async def history_pages(
    client: httpx.AsyncClient, url: str, between_pages: Callable[[], Awaitable[None]] | None = None
) -> list[dict]:
    """Follow a history Bundle's `next` links to the end; return all entries in order."""
    entries: list[dict] = []
    next_url: str | None = url
    for _ in range(1000):
        if next_url is None:
            return entries
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["type"] == "history"
        entries += bundle.get("entry", [])
        next_url = next(
            (link["url"] for link in bundle["link"] if link["relation"] == "next"), None
        )
        if between_pages is not None:
            await between_pages()
    raise AssertionError("history paging does not end")


def version_key(entry: dict[str, Any]) -> str:
    """Return "Type/id/_history/N" for a history entry."""
    return f"{entry['fullUrl'].split('/fhir/')[1]}/_history/{entry['response']['etag'][3:-1]}"


def tagged_versions(entries: list[dict], tag: str) -> list[str]:
    """Return the version keys of the history entries of Basic resources tagged `tag`."""
    return [
        version_key(e) for e in entries if e.get("resource", {}).get("code", {}).get("text") == tag
    ]


# create


async def test_create_answers_201_with_location_etag_and_last_modified(
    client: httpx.AsyncClient,
) -> None:
    """Create answers 201 with Location of version 1, ETag W/"1" and Last-Modified."""
    response = await create(client, patient())
    body = response.json()
    assert response.headers["location"] == f"http://hub.test/fhir/Patient/{body['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    last_modified = parsedate_to_datetime(response.headers["last-modified"])
    updated = datetime.fromisoformat(body["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert last_modified == updated.replace(microsecond=0)
    assert response.headers["content-type"].startswith("application/fhir+json")


async def test_create_sets_id_and_meta_itself(client: httpx.AsyncClient) -> None:
    """Create ignores the client's id and meta.versionId: the server chooses them."""
    before = datetime.now().astimezone()
    client_id = unique("client-")
    sent = patient(id=client_id, meta={"versionId": "7", "lastUpdated": "2001-01-01T00:00:00Z"})
    body = (await create(client, sent)).json()
    assert body["id"] != client_id
    assert body["meta"]["versionId"] == "1"
    updated = datetime.fromisoformat(body["meta"]["lastUpdated"].replace("Z", "+00:00"))
    assert updated >= before.replace(microsecond=0)
    assert (await client.get(f"/fhir/Patient/{client_id}")).status_code == 404


async def test_create_accepts_application_json(client: httpx.AsyncClient) -> None:
    """Create accepts a body sent as plain application/json."""
    response = await client.post(
        "/fhir/Patient", json=patient(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


# read and vread


async def test_read_returns_the_current_version(client: httpx.AsyncClient) -> None:
    """Read answers 200 with the stored resource, its ETag and Last-Modified."""
    created = (await create(client, patient())).json()
    response = await client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'
    assert "last-modified" in response.headers


@pytest.mark.parametrize(
    "suffix, headers",
    [
        ("/", {}),
        ("", {"accept": "application/json"}),
        ("", {"accept": "application/fhir+json"}),
        ("?_format=json", {}),
        ("?_format=application/fhir%2Bjson", {}),
    ],
    ids=["trailing-slash", "accept-json", "accept-fhir-json", "format-json", "format-fhir-json"],
)
async def test_read_accepts_json_forms(
    client: httpx.AsyncClient, suffix: str, headers: dict[str, str]
) -> None:
    """Read works with a trailing slash, with either JSON media type, and with _format=json."""
    created = (await create(client, patient())).json()
    response = await client.get(f"/fhir/Patient/{created['id']}{suffix}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created["id"]


@pytest.mark.parametrize(
    "suffix, headers",
    [("?_format=xml", {}), ("", {"accept": "application/fhir+xml"})],
    ids=["format-xml", "accept-xml"],
)
async def test_read_refuses_xml(
    client: httpx.AsyncClient, suffix: str, headers: dict[str, str]
) -> None:
    """Asking for XML answers 406: the hub speaks FHIR JSON only."""
    created = (await create(client, patient())).json()
    response = await client.get(f"/fhir/Patient/{created['id']}{suffix}", headers=headers)
    assert_outcome(response, 406)


async def test_read_of_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    """Reading an id that never existed answers 404."""
    assert_outcome(await client.get(f"/fhir/Patient/{unique()}"), 404)


async def test_vread_returns_each_version(client: httpx.AsyncClient) -> None:
    """Vread returns every version as it was written, and 404 for versions not written yet."""
    created = (await create(client, patient(gender="male"))).json()
    rid = created["id"]
    updated = await put(client, f"Patient/{rid}", {**created, "gender": "female"})
    assert updated.status_code == 200, updated.text
    first = await client.get(f"/fhir/Patient/{rid}/_history/1")
    second = await client.get(f"/fhir/Patient/{rid}/_history/2")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["gender"] == "male" and first.json()["meta"]["versionId"] == "1"
    assert second.json()["gender"] == "female" and second.headers["etag"] == 'W/"2"'
    assert_outcome(await client.get(f"/fhir/Patient/{rid}/_history/3"), 404)


# update


async def test_update_creates_version_2(client: httpx.AsyncClient) -> None:
    """Update answers 200 with version 2, ETag W/"2", and read then returns the new content."""
    created = (await create(client, patient())).json()
    response = await put(client, f"Patient/{created['id']}", {**created, "gender": "female"})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["meta"]["versionId"] == "2"
    current = (await client.get(f"/fhir/Patient/{created['id']}")).json()
    assert current["gender"] == "female" and current["meta"]["versionId"] == "2"


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    """PUT to an unused id creates the resource under that id: 201, version 1."""
    rid = unique("pt-")
    response = await put(client, f"Patient/{rid}", patient(id=rid))
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    assert response.json()["id"] == rid
    assert (await client.get(f"/fhir/Patient/{rid}")).status_code == 200


# delete


async def test_delete_then_read_is_410_and_old_versions_remain(client: httpx.AsyncClient) -> None:
    """After delete, read answers 410 Gone while vread of the old version still answers 200."""
    rid = (await create(client, patient())).json()["id"]
    assert (await client.delete(f"/fhir/Patient/{rid}")).status_code == 204
    assert_outcome(await client.get(f"/fhir/Patient/{rid}"), 410)
    old = await client.get(f"/fhir/Patient/{rid}/_history/1")
    assert old.status_code == 200 and old.json()["id"] == rid


async def test_delete_twice_is_fine(client: httpx.AsyncClient) -> None:
    """Deleting a deleted resource, or one that never existed, answers 204 again."""
    rid = (await create(client, patient())).json()["id"]
    assert (await client.delete(f"/fhir/Patient/{rid}")).status_code == 204
    assert (await client.delete(f"/fhir/Patient/{rid}")).status_code == 204
    assert (await client.delete(f"/fhir/Patient/{unique()}")).status_code == 204


async def test_update_after_delete_brings_the_resource_back(client: httpx.AsyncClient) -> None:
    """Updating a deleted resource recreates it (201) as the next version."""
    created = (await create(client, patient())).json()
    await client.delete(f"/fhir/Patient/{created['id']}")
    response = await put(client, f"Patient/{created['id']}", created)
    assert response.status_code == 201, response.text
    assert response.json()["meta"]["versionId"] == "3"
    assert (await client.get(f"/fhir/Patient/{created['id']}")).status_code == 200


# conditional create and update


async def test_conditional_create_finds_the_existing_resource(client: httpx.AsyncClient) -> None:
    """A second create with a matching If-None-Exist answers 200 with the first resource."""
    value = unique()
    condition = {"if-none-exist": f"identifier={token(value)}"}
    first = await create(client, patient(value), **condition)
    second = await client.post(
        "/fhir/Patient", json=patient(value), headers={**FHIR_JSON, **condition}
    )
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["meta"]["versionId"] == "1"
    assert await search_total(client, value) == 1


async def test_conditional_update_creates_when_nothing_matches(client: httpx.AsyncClient) -> None:
    """PUT Patient?identifier=... with no match creates the resource."""
    value = unique()
    response = await put(client, f"Patient?identifier={token(value)}", patient(value))
    assert response.status_code == 201, response.text
    assert await search_total(client, value) == 1


async def test_conditional_update_updates_the_one_match(client: httpx.AsyncClient) -> None:
    """PUT Patient?identifier=... with one match updates that resource to version 2."""
    value = unique()
    rid = (await create(client, patient(value))).json()["id"]
    response = await put(
        client, f"Patient?identifier={token(value)}", patient(value, gender="female")
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == rid and response.json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/fhir/Patient/{rid}")).json()["gender"] == "female"
    assert await search_total(client, value) == 1


async def test_conditional_update_with_two_matches_is_412(client: httpx.AsyncClient) -> None:
    """PUT Patient?identifier=... matching two resources answers 412 and changes nothing."""
    value = unique()
    ids = [(await create(client, patient(value))).json()["id"] for _ in range(2)]
    response = await put(
        client, f"Patient?identifier={token(value)}", patient(value, gender="other")
    )
    assert_outcome(response, 412)
    for rid in ids:
        assert (await client.get(f"/fhir/Patient/{rid}")).json()["meta"]["versionId"] == "1"


# If-Match


async def test_if_match_with_the_current_version_updates(client: httpx.AsyncClient) -> None:
    """Update with If-Match naming the current version succeeds."""
    created = (await create(client, patient())).json()
    response = await put(client, f"Patient/{created['id']}", created, **{"if-match": 'W/"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"2"'


async def test_if_match_with_a_stale_version_is_412(client: httpx.AsyncClient) -> None:
    """Update or delete with If-Match naming an old version answers 412 and changes nothing."""
    created = (await create(client, patient())).json()
    rid = created["id"]
    await put(client, f"Patient/{rid}", created)
    stale = {"if-match": 'W/"1"'}
    assert_outcome(await put(client, f"Patient/{rid}", created, **stale), 412)
    assert_outcome(await client.delete(f"/fhir/Patient/{rid}", headers=stale), 412)
    assert (await client.get(f"/fhir/Patient/{rid}")).json()["meta"]["versionId"] == "2"


# Prefer


async def test_prefer_return_minimal_sends_no_body(client: httpx.AsyncClient) -> None:
    """Prefer: return=minimal answers create and update with an empty body but full headers."""
    response = await client.post(
        "/fhir/Patient", json=patient(), headers={**FHIR_JSON, "prefer": "return=minimal"}
    )
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["etag"] == 'W/"1"' and "location" in response.headers
    rid = response.headers["location"].split("/Patient/")[1].split("/")[0]
    updated = await put(client, f"Patient/{rid}", patient(id=rid), prefer="return=minimal")
    assert updated.status_code == 200 and updated.content == b""


async def test_prefer_return_representation_sends_the_resource(client: httpx.AsyncClient) -> None:
    """Prefer: return=representation answers with the stored resource."""
    response = await create(client, patient(), prefer="return=representation")
    assert response.json()["resourceType"] == "Patient"
    assert response.json()["meta"]["versionId"] == "1"


async def test_prefer_return_operation_outcome(client: httpx.AsyncClient) -> None:
    """Prefer: return=OperationOutcome answers with an informational OperationOutcome."""
    response = await create(client, patient(), prefer="return=OperationOutcome")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "information"


# history


async def test_instance_history_lists_versions_newest_first(client: httpx.AsyncClient) -> None:
    """Instance history lists every version newest first with the method that made it."""
    created = (await create(client, patient())).json()
    rid = created["id"]
    await put(client, f"Patient/{rid}", {**created, "gender": "female"})
    await client.delete(f"/fhir/Patient/{rid}")
    response = await client.get(f"/fhir/Patient/{rid}/_history")
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["gender"] == "female"
    assert entries[2]["resource"]["meta"]["versionId"] == "1"


async def test_instance_history_pages_with_count(client: httpx.AsyncClient) -> None:
    """Instance history with _count=2 pages through all versions once each."""
    created = (await create(client, patient())).json()
    for _ in range(4):
        await put(client, f"Patient/{created['id']}", created)
    entries = await history_pages(client, f"/fhir/Patient/{created['id']}/_history?_count=2")
    assert [e["response"]["etag"] for e in entries] == [f'W/"{v}"' for v in range(5, 0, -1)]


async def test_instance_history_of_unknown_resource_is_404(client: httpx.AsyncClient) -> None:
    """History of a resource that never existed answers 404."""
    assert_outcome(await client.get(f"/fhir/Patient/{unique()}/_history"), 404)


async def test_type_history_pages_without_repeats_or_gaps(client: httpx.AsyncClient) -> None:
    """Type history paged with _count visits every version once, even while others write."""
    tag = unique("paging-")
    ids = [(await create(client, basic(tag))).json()["id"] for _ in range(12)]
    first = (await client.get(f"/fhir/Basic/{ids[0]}")).json()
    await put(client, f"Basic/{ids[0]}", first)
    expected = {f"Basic/{i}/_history/1" for i in ids} | {f"Basic/{ids[0]}/_history/2"}

    async def write_more() -> None:
        await create(client, basic(tag))

    entries = await history_pages(client, "/fhir/Basic/_history?_count=5", between_pages=write_more)
    seen = tagged_versions(entries, tag)
    assert len(seen) == len(set(seen)), "a version was listed twice"
    assert expected <= set(seen), f"versions skipped: {expected - set(seen)}"


async def test_type_history_pages_through_one_transaction(client: httpx.AsyncClient) -> None:
    """Type history paging visits each version once when many share one timestamp.

    A transaction stamps all its resources with the same lastUpdated, so pages split ties.
    """
    tag = unique("tie-")
    entries = [
        {"resource": basic(tag), "request": {"method": "POST", "url": "Basic"}} for _ in range(30)
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    assert (await client.post("/fhir", json=bundle, headers=FHIR_JSON)).status_code == 200
    pages = await history_pages(client, "/fhir/Basic/_history?_count=7")
    seen = tagged_versions(pages, tag)
    assert (len(seen), len(set(seen))) == (30, 30), "(listed, distinct) of 30 versions"


async def test_type_history_since(client: httpx.AsyncClient) -> None:
    """Type history with _since lists versions written at or after that instant only."""
    tag = unique("since-")
    old = (await create(client, basic(tag))).json()
    await asyncio.sleep(0.02)
    new = (await create(client, basic(tag))).json()
    since = new["meta"]["lastUpdated"]
    response = await client.get("/fhir/Basic/_history", params={"_since": since})
    assert response.status_code == 200, response.text
    ids = {e["resource"]["id"] for e in response.json()["entry"] if "resource" in e}
    assert new["id"] in ids
    assert old["id"] not in ids
    assert all(e["response"]["lastModified"] >= since for e in response.json()["entry"]), (
        "a version older than _since was listed"
    )


async def test_type_history_refuses_a_bad_since(client: httpx.AsyncClient) -> None:
    """_since that is not an instant answers 400 naming _since."""
    outcome = assert_outcome(await client.get("/fhir/Basic/_history?_since=yesterday"), 400)
    assert outcome["issue"][0]["expression"] == ["_since"]


# internal fields


async def test_internal_fields_never_leak(client: httpx.AsyncClient) -> None:
    """No response of any interaction carries the store's `_id` or `_hub` fields."""
    value = unique()
    created = await create(client, patient(value))
    rid = created.json()["id"]
    responses = [created]
    responses.append(await put(client, f"Patient/{rid}", {**created.json(), "gender": "female"}))
    responses.append(await client.get(f"/fhir/Patient/{rid}"))
    responses.append(await client.get(f"/fhir/Patient/{rid}/_history/1"))
    responses.append(await client.get(f"/fhir/Patient/{rid}/_history"))
    responses.append(await client.get("/fhir/Patient/_history?_count=20"))
    responses.append(await client.get("/fhir/Patient", params={"identifier": token(value)}))
    responses.append(
        await client.post(
            "/fhir/Patient",
            json=patient(value),
            headers={**FHIR_JSON, "if-none-exist": f"identifier={token(value)}"},
        )
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{rid}"}},
        ],
    }
    responses.append(
        await client.post(
            "/fhir", json=bundle, headers={**FHIR_JSON, "prefer": "return=representation"}
        )
    )
    await client.delete(f"/fhir/Patient/{rid}")
    responses.append(await client.get(f"/fhir/Patient/{rid}/_history"))
    for response in responses:
        assert response.status_code in (200, 201), response.text
        assert_no_internal_fields(response)


async def test_instance_history_since(client: httpx.AsyncClient) -> None:
    """Instance history with _since lists only the versions written at or after that instant."""
    first = (await create(client, basic(unique("inst-since-")))).json()
    await asyncio.sleep(0.02)
    second = (await client.put(f"/fhir/Basic/{first['id']}", json=first)).json()
    since = second["meta"]["lastUpdated"]
    response = await client.get(f"/fhir/Basic/{first['id']}/_history", params={"_since": since})
    assert response.status_code == 200, response.text
    versions = [e["resource"]["meta"]["versionId"] for e in response.json()["entry"]]
    assert versions == ["2"]
