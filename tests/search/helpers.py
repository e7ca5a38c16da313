"""Helpers for the search tests: tagged resources, searches that return ids, page walking.

Every test shares one database, so each one tags what it creates with a code of its own
(`meta.tag` urn:test|code) and searches with `_tag` for that code.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from support import FHIR_JSON, unique

TAG_SYSTEM = "urn:test"
CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "http://hub.test/fhir"

Params = dict[str, str] | list[tuple[str, str]]


def tag_of(code: str) -> str:
    """Return the `_tag` search value of a test tag."""
    return f"{TAG_SYSTEM}|{code}"


def tagged(resource: dict[str, Any], tag: str) -> dict[str, Any]:
    """Return the resource with the test tag added to meta.tag."""
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), {"system": TAG_SYSTEM, "code": tag}]
    return {**resource, "meta": meta}


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    """POST a resource, check that it was created, and return its id."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def with_tag(params: Params, tag: str | None) -> list[tuple[str, str]]:
    """Return the parameters as pairs, with `_tag` for the test tag when one is given."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    return pairs + ([("_tag", tag_of(tag))] if tag else [])


async def get(
    client: httpx.AsyncClient, path: str, params: Params, tag: str | None = None, **headers: str
) -> httpx.Response:
    """GET a path below /fhir with the parameters (and the test tag)."""
    return await client.get(f"/fhir/{path}", params=with_tag(params, tag), headers=headers)


async def bundle(
    client: httpx.AsyncClient, path: str, params: Params, tag: str | None = None, **headers: str
) -> dict[str, Any]:
    """Search and return the searchset Bundle, checking it answered 200."""
    response = await get(client, path, params, tag, **headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset", body
    return body


def entries(body: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    """Return the entries of a Bundle in one search mode."""
    return [e for e in body.get("entry", []) if e.get("search", {}).get("mode") == mode]


def keys(body: dict[str, Any], mode: str = "match") -> list[str]:
    """Return "Type/id" of the entries of one search mode, in order."""
    return [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(body, mode)]


def ids(body: dict[str, Any], mode: str = "match") -> set[str]:
    """Return the ids of the entries of one search mode."""
    return {e["resource"]["id"] for e in entries(body, mode)}


async def found(client: httpx.AsyncClient, path: str, params: Params, tag: str) -> set[str]:
    """Search (one large page) among the resources of a test tag; return the matching ids."""
    body = await bundle(client, path, [*with_tag(params, tag), ("_count", "1000")])
    return ids(body)


def link(body: dict[str, Any], relation: str) -> str | None:
    """Return the URL of a Bundle link, or None."""
    return next((x["url"] for x in body.get("link", []) if x["relation"] == relation), None)


async def walk_pages(
    client: httpx.AsyncClient,
    first: httpx.Response,
    between_pages: Callable[[int], Awaitable[None]] | None = None,
) -> list[list[str]]:
    """Follow `next` links from a first page; return each page's matches as "Type/id"."""
    assert first.status_code == 200, first.text
    body = first.json()
    pages = [keys(body)]
    for number in range(1, 200):
        url = link(body, "next")
        if url is None:
            return pages
        assert url.startswith(BASE), url
        if between_pages is not None:
            await between_pages(number)
        response = await client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(keys(body))
    raise AssertionError("paging does not end")


def assert_outcome(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """Check for an OperationOutcome error with this status that mentions each text given."""
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    text = " ".join(
        " ".join([i.get("diagnostics", ""), *i.get("expression", [])]) for i in outcome["issue"]
    )
    for mention in mentions:
        assert mention in text, (mention, outcome)
    return outcome


@dataclass
class Seeded:
    """Resources a module created under one tag, by the names the tests give them."""

    tag: str
    ids: dict[str, str]

    def names(self, found_ids: set[str]) -> set[str]:
        """Return the names of the given ids; unknown ids are kept as they are."""
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id.get(i, i) for i in found_ids}

    async def search(self, client: httpx.AsyncClient, path: str, params: Params) -> set[str]:
        """Search among these resources; return the names of the matches."""
        return self.names(await found(client, path, params, self.tag))


async def expect(
    client: httpx.AsyncClient, data: Seeded, path: str, param: str, cases: dict[str, set[str]]
) -> None:
    """Search with each value of one parameter; check each finds exactly the named resources."""
    got = {value: await data.search(client, path, {param: value}) for value in cases}
    assert got == cases


async def seed(client: httpx.AsyncClient, resources: dict[str, dict[str, Any]]) -> Seeded:
    """Create named resources under a new tag."""
    tag = unique("t")
    return Seeded(
        tag, {name: await create(client, tagged(r, tag)) for name, r in resources.items()}
    )


def observation(subject: str | dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Return a valid heart-rate Observation about `subject` ("Type/id" or a Reference)."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        **extra,
    }
    if subject:
        resource["subject"] = {"reference": subject} if isinstance(subject, str) else subject
    return resource


def person(family: str, *given: str, **extra: Any) -> dict[str, Any]:
    """Return a valid Patient with a name and a citizen ID of its own."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD, "value": unique()}],
        "name": [{"family": family, "given": list(given)}],
        **extra,
    }
