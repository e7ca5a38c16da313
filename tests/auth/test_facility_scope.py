"""Facility scoping: a facility system writes as itself and reads back only its own records.

Real HTTP against the real app: every call carries a token, and a facility's is scoped.
"""

import traceback
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from auth.helpers import bearer, register, token_for
from support import FHIR_JSON, observation, patient, unique

FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
HIV = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}


@dataclass
class Facility:
    """A facility system's code and the headers of its requests."""

    code: str
    headers: dict[str, str]


async def facility(app: Any, client: httpx.AsyncClient) -> Facility:
    """Register a facility system of a new facility and return it with a token."""
    code = unique("F")
    identity, secret = await register(app, "facility", facility=code)
    token = await token_for(client, identity, secret)
    return Facility(code, FHIR_JSON | bearer(token))


async def created(client: httpx.AsyncClient, who: Facility, resource: dict[str, Any]) -> str:
    """Create a resource as a facility; return its id."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ids(bundle: dict[str, Any], mode: str | None = None) -> set[str]:
    """Return the "Type/id" of a Bundle's entries (of one search mode, if given)."""
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)
    }


@dataclass
class World:
    """Two facilities, each with a patient and an observation; A's observation also points at
    B's patient and B's at A's, so that includes would cross facilities if unscoped."""

    a: Facility
    b: Facility
    cccd: str  # the same citizen ID on both patients: one person held at two facilities
    pa: str
    pb: str
    oa: str
    ob: str


@pytest.fixture
async def world(app: Any, client: httpx.AsyncClient) -> World:
    a, b = await facility(app, client), await facility(app, client)
    cccd = unique()
    pa = await created(client, a, patient(cccd))
    pb = await created(client, b, patient(cccd))
    extra = {"performer": [{"reference": f"Patient/{pb}"}]}
    oa = await created(client, a, observation(f"Patient/{pa}", **extra))
    ob = await created(
        client, b, observation(f"Patient/{pb}", performer=[{"reference": f"Patient/{pa}"}])
    )
    return World(a, b, cccd, pa, pb, oa, ob)


def tour(w: World) -> list[str]:
    """Return every read path of the FHIR API, as facility A would walk it."""
    return [
        f"/fhir/Patient/{w.pa}",
        f"/fhir/Patient/{w.pb}",
        f"/fhir/Patient/{w.pa}/_history/1",
        f"/fhir/Patient/{w.pb}/_history/1",
        f"/fhir/Patient/{w.pa}/_history",
        f"/fhir/Patient/{w.pb}/_history",
        "/fhir/Patient/_history?_count=1",
        f"/fhir/Patient?identifier={CCCD}|{w.cccd}",
        f"/fhir/Patient?identifier={CCCD}|{w.cccd}&_summary=count",
        "/fhir/Patient?_total=accurate&_count=1",
        "/fhir/Patient?_summary=count",
        f"/fhir/Observation?subject=Patient/{w.pa}&_include=Observation:performer",
        f"/fhir/Observation?subject=Patient/{w.pb}",
        f"/fhir/Patient?_id={w.pa},{w.pb}&_revinclude=Observation:performer",
        f"/fhir/Patient?_id={w.pa}&_revinclude=Observation:subject&_include:iterate=Observation:performer",
        f"/fhir/Observation?subject.identifier={CCCD}|{w.cccd}",
        f"/fhir/Patient?_has:Observation:subject:code=8867-4&identifier={CCCD}|{w.cccd}",
        f"/fhir?_type=Patient,Observation&_id={w.pa},{w.pb},{w.oa},{w.ob}",
        f"/fhir/Patient/{w.pa}/Observation",
        f"/fhir/Patient/{w.pb}/Observation",
        f"/fhir/Patient/{w.pa}/$everything",
        f"/fhir/Patient/{w.pb}/$everything",
        f"/fhir/Patient/{w.pa}/$everything?_count=1",
    ]


# The module whose reads decide what a caller may see (who is whom, consents): never shown.
DECIDING = "hub/access/"


class Spy:
    """Stands in for a MongoDB collection, recording the filter of every read it forwards and
    whether the access decision made it (to tell who is whom) rather than the request."""

    READS = (
        "find",
        "find_one",
        "aggregate",
        "count_documents",
        "distinct",
        "estimated_document_count",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "find_raw_batches",
    )

    def __init__(self, collection: Any, seen: list[tuple[str, str, Any]]) -> None:
        self._collection = collection
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._collection, name)
        if name not in self.READS:
            return real

        def recorded(*args: Any, **kwargs: Any) -> Any:
            wanted = args[0] if args else kwargs.get("filter", kwargs.get("pipeline"))
            deciding = any(DECIDING in f.filename for f in traceback.extract_stack())
            self._seen.append((self._collection.name, name, wanted, deciding))
            return real(*args, **kwargs)

        return recorded


async def test_every_store_read_of_a_facility_is_scoped(
    app: Any, client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str, Any, bool]] = []
    mongo = app.state.mongo
    for name in ("resources", "history"):
        monkeypatch.setattr(mongo, name, Spy(getattr(mongo, name), seen))
    a = world.a
    for path in tour(world):
        response = await client.get(path, headers=a.headers)
        assert response.status_code in (200, 404), (path, response.text)
        for link in response.json().get("link", []):
            if link["relation"] == "next":  # paging cursors
                following = await client.get(
                    link["url"].removeprefix("http://hub.test"), headers=a.headers
                )
                assert following.status_code == 200, following.text
    writes = [
        (
            "POST",
            "/fhir/Patient",
            patient(world.cccd),
            {"if-none-exist": f"identifier={CCCD}|{world.cccd}"},
        ),
        ("PUT", f"/fhir/Patient?identifier={CCCD}|{world.cccd}", patient(world.cccd), {}),
        ("PUT", f"/fhir/Patient/{world.pb}", patient(world.cccd, id=world.pb), {}),
        ("DELETE", f"/fhir/Observation?code=8867-4&subject=Patient/{world.pb}", None, {}),
        ("DELETE", f"/fhir/Observation/{world.ob}", None, {}),
    ]
    for method, path, body, headers in writes:
        response = await client.request(method, path, json=body, headers=a.headers | headers)
        assert response.status_code < 500, (path, response.text)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{world.pa}/_history/1"}},
            {"request": {"method": "GET", "url": f"Observation?subject=Patient/{world.pb}"}},
            {
                "resource": patient(world.cccd),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={CCCD}|{world.cccd}",
                },
            },
            {
                "request": {
                    "method": "DELETE",
                    "url": f"Patient?identifier={CCCD}|{world.cccd}&_id={world.pb}",
                }
            },
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=a.headers)
    assert response.status_code == 200, response.text
    serving = [(c, m, w) for c, m, w, deciding in seen if not deciding]
    assert serving, "the spy saw no query"
    unscoped = [
        (collection, method, wanted)
        for collection, method, wanted in serving
        if not isinstance(wanted, dict) or "_hub.fac" not in wanted
    ]
    assert not unscoped, f"{len(unscoped)} of {len(seen)} queries bypass the scope: {unscoped[:5]}"
    # Every scoped read asks for A's records; only the check that an id is taken looks outside.
    assert {str(w["_hub.fac"]) for _, _, w in serving} <= {a.code, str({"$ne": a.code})}


async def test_another_facilitys_records_look_absent(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, world: World
) -> None:
    a, pa, pb, oa, ob = world.a, world.pa, world.pb, world.oa, world.ob
    for path in (
        f"/fhir/Patient/{pb}",
        f"/fhir/Patient/{pb}/_history/1",
        f"/fhir/Patient/{pb}/_history",
        f"/fhir/Patient/{pb}/$everything",
        f"/fhir/Patient/{pb}/Observation",
        f"/fhir/Observation/{ob}",
    ):
        response = await client.get(path, headers=a.headers)
        assert response.status_code == 404, (path, response.text)
        assert "forbidden" not in response.text.lower()
    by_cccd = f"identifier={CCCD}|{world.cccd}"
    searches = {
        f"/fhir/Patient?{by_cccd}": {f"Patient/{pa}"},
        f"/fhir/Observation?subject.identifier={CCCD}|{world.cccd}": {f"Observation/{oa}"},
        f"/fhir/Patient?_has:Observation:subject:code=8867-4&{by_cccd}": {f"Patient/{pa}"},
        f"/fhir?_type=Patient,Observation&_id={pa},{pb},{oa},{ob}": {
            f"Patient/{pa}",
            f"Observation/{oa}",
        },
    }
    for path, expected in searches.items():
        body = (await client.get(path, headers=a.headers)).json()
        assert ids(body) == expected, path
        assert body["total"] == len(expected), path
    count = (await client.get(f"/fhir/Patient?{by_cccd}&_summary=count", headers=a.headers)).json()
    assert count["total"] == 1
    # _include: A's observation points at B's patient, which stays out.
    body = (
        await client.get(
            f"/fhir/Observation?_id={oa}&_include=Observation:performer", headers=a.headers
        )
    ).json()
    assert ids(body) == {f"Observation/{oa}"}
    # _revinclude: B's observation points at A's patient, and stays out.
    body = (
        await client.get(
            f"/fhir/Patient?_id={pa}&_revinclude=Observation:performer", headers=a.headers
        )
    ).json()
    assert ids(body) == {f"Patient/{pa}"}
    # $everything: the same person is held at B too; only A's part of the record comes back.
    body = (await client.get(f"/fhir/Patient/{pa}/$everything", headers=a.headers)).json()
    assert ids(body) == {f"Patient/{pa}", f"Observation/{oa}"}
    assert body["total"] == 2
    history = (await client.get("/fhir/Patient/_history?_count=50", headers=a.headers)).json()
    assert ids(history) == {f"Patient/{pa}"}
    # B sees its own part of the person, and a call without a token sees nothing at all.
    body = (await client.get(f"/fhir/Patient/{pb}/$everything", headers=world.b.headers)).json()
    assert ids(body) == {f"Patient/{pb}", f"Observation/{ob}"}
    response = await anonymous.get(f"/fhir/Patient/{pa}/$everything", headers=FHIR_JSON)
    assert response.status_code == 401


async def test_records_written_without_a_facility_token_are_not_a_facilitys(
    app: Any, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    a = await facility(app, client)
    response = await admin.post("/fhir/Practitioner", json={"resourceType": "Practitioner"})
    assert response.status_code == 201, response.text
    assert (
        await client.get(f"/fhir/Practitioner/{response.json()['id']}", headers=a.headers)
    ).status_code == 404


async def test_each_facility_gets_its_own_copy_by_conditional_create(
    app: Any, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    a, b = await facility(app, client), await facility(app, client)
    mrn = {"system": "https://moh.gov.vn/fhir/sid/mrn/shared", "value": unique()}
    condition = {"if-none-exist": f"identifier={mrn['system']}|{mrn['value']}"}
    body = patient() | {"identifier": [mrn], "meta": {"security": [HIV]}}
    made = {}
    for who in (a, b):
        response = await client.post("/fhir/Patient", json=body, headers=who.headers | condition)
        assert response.status_code == 201, response.text
        made[who.code] = response.json()["id"]
        again = await client.post("/fhir/Patient", json=body, headers=who.headers | condition)
        assert again.status_code == 200 and again.json()["id"] == made[who.code]
        assert "_hub" not in again.text
    assert made[a.code] != made[b.code]
    search = f"/fhir/Patient?identifier={mrn['system']}|{mrn['value']}"
    for who in (a, b):
        found = (await client.get(search, headers=who.headers)).json()
        assert ids(found) == {f"Patient/{made[who.code]}"}
    # Updated by its facility, the record and its history stay attributed to it, labels kept.
    update = body | {"id": made[a.code], "gender": "female"}
    response = await client.put(f"/fhir/Patient/{made[a.code]}", json=update, headers=a.headers)
    assert response.status_code == 200, response.text
    mongo = app.state.mongo
    current = await mongo.resources.find_one({"_id": f"Patient/{made[a.code]}"})
    old = await mongo.history.find_one({"_id": f"Patient/{made[a.code]}/_history/1"})
    for doc in (current, old):
        assert doc["_hub"]["fac"] == a.code
        assert doc["_hub"]["labels"] == [f"{HIV['system']}|{HIV['code']}"]
    other = await mongo.resources.find_one({"_id": f"Patient/{made[b.code]}"})
    assert other["_hub"]["fac"] == b.code
    # A write without a facility token (the admin's, of the registry) keeps the record's facility.
    organization = await created(client, a, _organization(a.code))
    renamed = _organization(a.code) | {"id": organization, "name": "Bệnh viện A"}
    response = await admin.put(f"/fhir/Organization/{organization}", json=renamed)
    assert response.status_code == 200, response.text
    assert (await mongo.resources.find_one({"_id": f"Organization/{organization}"}))["_hub"][
        "fac"
    ] == a.code


async def test_a_facility_cannot_overwrite_or_delete_anothers_record(
    client: httpx.AsyncClient, world: World
) -> None:
    a, b, pb = world.a, world.b, world.pb
    response = await client.put(f"/fhir/Patient/{pb}", json=patient(id=pb), headers=a.headers)
    assert response.status_code == 403, response.text
    assert f"Patient/{pb}" in response.json()["issue"][0]["diagnostics"]
    response = await client.delete(f"/fhir/Patient/{pb}", headers=a.headers)
    assert response.status_code == 204  # as for any resource that is not there
    # Conditional writes match A's records only: B's patient stays as it was.
    response = await client.put(
        f"/fhir/Patient?identifier={CCCD}|{world.cccd}&_id={pb}",
        json=patient(world.cccd),
        headers=a.headers,
    )
    assert response.status_code == 201, response.text
    response = await client.delete(f"/fhir/Patient?_id={pb}", headers=a.headers)
    assert response.status_code == 204
    kept = await client.get(f"/fhir/Patient/{pb}", headers=b.headers)
    assert kept.status_code == 200 and kept.json()["meta"]["versionId"] == "1"
    # A's own id that nobody holds is fine to create under.
    own = unique("p-")
    response = await client.put(f"/fhir/Patient/{own}", json=patient(id=own), headers=a.headers)
    assert response.status_code == 201, response.text


def _bundle(kind: str, *resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in resources
        ],
    }


def _organization(code: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY_SYSTEM, "value": code}],
    }


@pytest.mark.parametrize("kind", ["transaction", "batch"])
async def test_a_bundle_claiming_another_facility_is_refused_whole(
    app: Any, client: httpx.AsyncClient, kind: str
) -> None:
    a, b = await facility(app, client), await facility(app, client)
    cccd = unique()
    claims = {
        "entry[1].resource.identifier[0]": _organization(b.code),
        "entry[1].resource.meta.tag[0]": patient(
            meta={"tag": [{"system": FACILITY_SYSTEM, "code": b.code}]}
        ),
        "entry[1].resource.meta.source": patient(meta={"source": f"{FACILITY_SYSTEM}/{b.code}"}),
    }
    for where, claim in claims.items():
        response = await client.post(
            "/fhir", json=_bundle(kind, patient(cccd), claim), headers=a.headers
        )
        assert response.status_code == 403, response.text
        issue = response.json()["issue"][0]
        assert f"Bundle.{where}" in issue["diagnostics"] and b.code in issue["diagnostics"]
        assert issue["expression"] == ["Bundle.entry[1]"]
    found = await client.get(f"/fhir/Patient?identifier={CCCD}|{cccd}", headers=a.headers)
    assert found.json()["total"] == 0, "nothing of a refused bundle is written"
    # Its own Organization, tags and source are fine.
    own = patient(
        cccd,
        meta={
            "tag": [{"system": FACILITY_SYSTEM, "code": a.code}],
            "source": f"{FACILITY_SYSTEM}/{a.code}",
        },
    )
    response = await client.post(
        "/fhir", json=_bundle(kind, own, _organization(a.code)), headers=a.headers
    )
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["201 Created", "201 Created"]


async def test_a_single_write_claiming_another_facility_is_refused(
    app: Any, client: httpx.AsyncClient
) -> None:
    a, b = await facility(app, client), await facility(app, client)
    response = await client.post(
        "/fhir/Organization", json=_organization(b.code), headers=a.headers
    )
    assert response.status_code == 403
    assert "identifier[0]" in response.text


async def test_a_clinician_reads_but_cannot_write(app: Any, client: httpx.AsyncClient) -> None:
    identity, secret = await register(
        app, "clinician", facility=unique("F"), practitioner="Practitioner/bs"
    )
    headers = FHIR_JSON | bearer(await token_for(client, identity, secret))
    for method, path, body in (
        ("POST", "/fhir/Patient", patient()),
        ("PUT", f"/fhir/Patient/{unique('p-')}", None),
        ("DELETE", f"/fhir/Patient/{unique('p-')}", None),
        ("POST", "/fhir", _bundle("transaction", patient())),
        ("POST", "/fhir", _bundle("batch", patient())),
    ):
        if method == "PUT":
            pid = path.rsplit("/", 1)[-1]
            body = patient(id=pid)
        response = await client.request(method, path, json=body, headers=headers)
        if path == "/fhir" and response.status_code == 200:  # a batch answers per entry
            assert response.json()["entry"][0]["response"]["status"].startswith("403")
            continue
        assert response.status_code == 403, (method, path, response.text)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert (await client.get("/fhir/Patient?_count=1", headers=headers)).status_code == 200


async def test_a_token_without_the_read_scope_gets_403(app: Any, client: httpx.AsyncClient) -> None:
    identity, secret = await register(app, "facility", facility=unique("F"))
    token = await token_for(client, identity, secret, scope="system/Observation.cruds")
    headers = FHIR_JSON | bearer(token)
    for path in (
        "/fhir/Patient/x",
        "/fhir/Patient?_count=1",
        "/fhir/Patient/_history",
        "/fhir/Patient/x/$everything",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
    response = await client.post("/fhir/Patient", json=patient(), headers=headers)
    assert response.status_code == 403
    assert (await client.get("/fhir/Observation?_count=1", headers=headers)).status_code == 200
