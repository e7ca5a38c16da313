"""Hostile input from authenticated callers: every one answered with a 4xx (never a 5xx) and
neither an effect nor a leak beyond what the caller may see.

tests/search/test_injection.py checks that operator-like search values and names match
nothing and crash nothing. This file adds what a caller with a token can try: operators that
would widen their scope (another facility's records, another citizen's), ids in paths,
headers (Authorization, If-None-Exist, If-Match, CRLF, sizes), JSON bodies (`$` and `.` keys,
the hub's own `_hub` and `_id` fields, resourceType mismatches, deep nesting, prototype
pollution keys), conditional writes, Bundles, and the token, login and break-glass forms.
Real HTTP against a hub requiring tokens.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from auth.helpers import bearer, register, token_for
from support import FHIR_JSON, observation, patient, returned, unique

from hub.settings import Settings

NATIONAL = Settings().national_id_system
FORM = {"content-type": "application/x-www-form-urlencoded"}
NE = '{"$ne":null}'
GT = '{"$gt":""}'
OPERATORS = [NE, GT, "$where", ".*", "^.*$", "[$ne]", "x|.*"]


@dataclass
class Who:
    """A caller and the headers of its requests."""

    client_id: str
    secret: str
    headers: dict[str, str]


@dataclass
class Scene:
    """Facility F's patient (the patient caller's own record), a neighbour at F, and a
    patient at facility G; an Observation about each."""

    code: str  # facility F's code
    admin: Who
    facility: Who
    clinician: Who
    patient: Who
    other_facility: Who
    mine: str  # Patient/id
    mine_observation: str
    neighbour: str
    neighbour_observation: str
    other: str
    other_observation: str

    def hidden_from(self, role: str) -> set[str]:
        """Return the records a role of facility F must never get back."""
        elsewhere = {self.other, self.other_observation}
        if role == "patient":
            return elsewhere | {self.neighbour, self.neighbour_observation}
        return elsewhere


@pytest.fixture(scope="module")
async def http(secured_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client of the secured hub that gets a server error as a 500 response."""
    transport = httpx.ASGITransport(app=secured_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


async def who(app: Any, http: httpx.AsyncClient, role: str, **fields: Any) -> Who:
    """Register a caller of a role and return it with a token."""
    identity, secret = await register(app, role, **fields)
    token = await token_for(http, identity, secret)
    return Who(identity.client_id, secret, FHIR_JSON | bearer(token))


async def created(http: httpx.AsyncClient, by: Who, resource: dict[str, Any]) -> str:
    """Create a resource; return its Type/id."""
    kind = resource["resourceType"]
    response = await http.post(f"/fhir/{kind}", json=resource, headers=by.headers)
    assert response.status_code == 201, response.text
    return f"{kind}/{response.json()['id']}"


@pytest.fixture(scope="module")
async def scene(secured_app: Any, http: httpx.AsyncClient) -> Scene:
    code, cccd = unique("F"), unique()[:12]
    facility = await who(secured_app, http, "facility", facility=code)
    other_facility = await who(secured_app, http, "facility", facility=unique("G"))
    mine = await created(http, facility, patient(cccd))
    neighbour = await created(http, facility, patient())
    other = await created(http, other_facility, patient())
    return Scene(
        code=code,
        admin=await who(secured_app, http, "admin"),
        facility=facility,
        clinician=await who(secured_app, http, "clinician", facility=code),
        patient=await who(secured_app, http, "patient", patient=cccd),
        other_facility=other_facility,
        mine=mine,
        mine_observation=await created(http, facility, observation(mine)),
        neighbour=neighbour,
        neighbour_observation=await created(http, facility, observation(neighbour)),
        other=other,
        other_observation=await created(http, other_facility, observation(other)),
    )


def client_error(response: httpx.Response) -> dict[str, Any]:
    """Check a 4xx answer carrying an OperationOutcome; return it."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return dict(outcome)


def no_leak(response: httpx.Response, hidden: set[str]) -> None:
    """Check an answer is a 4xx OperationOutcome, or a 2xx showing none of `hidden`."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        client_error(response)
        return
    shown = returned(response.json()) & hidden
    assert not shown, f"{response.request.url} returned {shown}"


async def current(app: Any, reference: str) -> dict[str, Any]:
    """Return a resource's stored document, its internal fields included."""
    document = await app.state.mongo.resources.find_one({"_id": reference})
    assert document is not None, reference
    return dict(document)


# --- search values and names that would widen the caller's scope -------------------------


def widening_queries(scene: Scene) -> list[str]:
    """Return searches whose operators, if obeyed, would reach beyond the caller's records."""
    other_id = scene.other.split("/")[1]
    queries = [f"Patient?identifier={quote(v)}" for v in OPERATORS]
    queries += [f"Patient?_id={quote(v)}" for v in OPERATORS]
    queries += [f"Observation?subject={quote(v)}" for v in OPERATORS]
    return queries + [
        "Patient?identifier[$ne]=x",
        "Patient?_id[$ne]=x",
        "Patient?_id[$regex]=.*",
        "Patient?name=$where",
        f"Patient?_id={other_id[:8]}.*",
        f"Patient?_id=.*{other_id[-6:]}",
        f"Observation?subject=Patient/{quote('.*')}",
        "Observation?subject[$ne]=x",
        f"Observation?subject:Patient.identifier={quote(NE)}",
        f"Observation?subject:Patient.identifier={quote(NATIONAL + '|.*')}",
        "Patient?_has:Observation:subject:_id[$ne]=x",
        f"Patient?_has:Observation:subject:status={quote(NE)}",
        "Patient?_id:missing=false",
        f"Patient?identifier:not={quote(NATIONAL + '|x')}",
        "Patient?_revinclude=Observation:subject&_id[$ne]=x",
        f"Observation?_include=Observation:subject&subject={quote(NE)}",
        f"?_type=Patient,Observation&_id={quote(NE)}",
        f"Patient/{quote('.*')}/Observation",
        f"Patient/{quote(NE)}/$everything",
    ]


@pytest.mark.parametrize("role", ["facility", "clinician", "patient"])
async def test_search_operators_do_not_widen_a_scope(
    http: httpx.AsyncClient, scene: Scene, role: str
) -> None:
    """No operator-like search value or name returns another facility's record, or to a
    patient another citizen's; none fails with 5xx."""
    headers = getattr(scene, role).headers
    for query in widening_queries(scene):
        response = await http.get(f"/fhir/{query}".replace("/?", "?"), headers=headers)
        no_leak(response, scene.hidden_from(role))


@pytest.mark.parametrize("role", ["facility", "clinician", "patient"])
async def test_search_operators_in_a_post_search_form(
    http: httpx.AsyncClient, scene: Scene, role: str
) -> None:
    headers = getattr(scene, role).headers | FORM
    for body in [
        "identifier[$ne]=x",
        "_id=%7B%22%24ne%22%3Anull%7D",
        "_id[$regex]=.*",
        "subject=%7B%22%24gt%22%3A%22%22%7D",
        "_id=.*",
    ]:
        for kind in ("Patient", "Observation"):
            response = await http.post(f"/fhir/{kind}/_search", content=body, headers=headers)
            no_leak(response, scene.hidden_from(role))


async def test_audit_search_operators_show_a_patient_nobody_elses_events(
    http: httpx.AsyncClient, scene: Scene
) -> None:
    """A patient's audit search with operators finds only events naming their own records."""
    mine = await http.get(f"/fhir/{scene.mine}", headers=scene.patient.headers)
    assert mine.status_code == 200, mine.text
    for query in [
        f"patient={quote(NE)}",
        "patient[$ne]=x",
        f"patient=Patient/{quote('.*')}",
        f"patient={scene.other}",
        f"patient:identifier={quote(NATIONAL + '|.*')}",
        f"agent={quote(NE)}",
        "agent[$ne]=x",
        f"_id={quote(GT)}",
        f"date={quote(GT)}",
    ]:
        response = await http.get(f"/fhir/AuditEvent?{query}", headers=scene.patient.headers)
        assert response.status_code < 500, (query, response.text)
        if response.status_code >= 400:
            client_error(response)
            continue
        for entry in response.json().get("entry", []):
            named = {
                e.get("what", {}).get("reference")
                for e in entry["resource"].get("entity", [])
                if e.get("type", {}).get("code") == "1"
            }
            assert named <= {scene.mine}, (query, named)


# --- ids in paths ---------------------------------------------------------------------------

HOSTILE_IDS = [
    "%24ne",
    quote(NE, safe=""),
    quote(".*", safe=""),
    "%00",
    quote("$where", safe=""),
    quote("a|b", safe=""),
    "..%2F..%2Fmetadata",
    "x" * 300,
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
async def test_hostile_ids_in_paths_are_client_errors(
    http: httpx.AsyncClient, scene: Scene, hostile: str
) -> None:
    headers = scene.facility.headers
    for path in [
        f"/fhir/Patient/{hostile}",
        f"/fhir/Patient/{hostile}/_history",
        f"/fhir/Patient/{hostile}/_history/1",
        f"/fhir/Patient/{hostile}/$everything",
        f"/fhir/Patient/{hostile}/Observation",
        f"/fhir/AuditEvent/{hostile}",
    ]:
        response = await http.get(path, headers=headers)
        client_error(response)


@pytest.mark.parametrize("version", ["%24ne", "1.0", "-1", "99999999999999999999999", "0x1"])
async def test_hostile_versions_in_paths_are_client_errors(
    http: httpx.AsyncClient, scene: Scene, version: str
) -> None:
    """A version that is not a small whole number finds nothing, whatever its digits."""
    response = await http.get(f"/fhir/{scene.mine}/_history/{version}", headers=FHIR_JSON)
    assert response.status_code == 401  # without a token: refused before anything else
    response = await http.get(
        f"/fhir/{scene.mine}/_history/{version}", headers=scene.facility.headers
    )
    client_error(response)


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/{mine}/_history/%C2%B2",
        "/fhir/{mine}/_history?_below=%C2%B2",
        "/fhir/{mine}/_history?_count=%C2%B2",
        "/fhir/Patient/_history?_count=%C2%B2",
        "/fhir/Patient?_count=%C2%B2",
        "/fhir/{mine}/Observation?_count=%C2%B2",
        "/fhir/{mine}/$everything?_count=%C2%B2",
        "/fhir/AuditEvent?_count=%C2%B2",
        "/fhir/Patient?_count=%D9%A3",
    ],
)
async def test_digits_that_are_not_ascii_are_client_errors(
    http: httpx.AsyncClient, scene: Scene, path: str
) -> None:
    """A number written with characters Python calls digits but int() refuses (², superscript
    two) or reads (٣, Arabic-Indic three) is a 4xx or read as that number, never a 5xx."""
    response = await http.get(path.format(mine=scene.mine), headers=scene.patient.headers)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        client_error(response)


@pytest.mark.parametrize("hostile", ["$gt", ".*", "a b", "x" * 65])
async def test_a_put_under_a_hostile_id_is_refused(
    http: httpx.AsyncClient, scene: Scene, hostile: str
) -> None:
    response = await http.put(
        f"/fhir/Patient/{quote(hostile, safe='')}",
        json=patient(id=hostile),
        headers=scene.facility.headers,
    )

    client_error(response)


async def test_a_delete_under_a_pattern_deletes_nothing(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene
) -> None:
    for hostile in [".*", "%24ne", quote(NE, safe="")]:
        response = await http.delete(f"/fhir/Patient/{hostile}", headers=scene.facility.headers)
        assert response.status_code < 500, response.text
    for reference in (scene.mine, scene.neighbour):
        assert not (await current(secured_app, reference))["_hub"].get("del"), reference


# --- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        'Bearer {"$ne":null}',
        "Bearer " + "A" * 100_000,
        "Bearer a b c",
        "Bearer ../../../etc/passwd",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "Digest username=admin, response=x",
        "Negotiate YIIBhwYGKwYBBQUC",
        "Bearer\x0bx",
        "bearer " + "." * 50,
    ],
    ids=lambda value: value[:30],
)
async def test_odd_authorization_headers_are_401(
    http: httpx.AsyncClient, authorization: str
) -> None:
    response = await http.get("/fhir/Patient", headers={"authorization": authorization})

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer ")
    client_error(response)


async def test_two_authorization_headers_grant_no_more_than_the_first(
    http: httpx.AsyncClient, scene: Scene
) -> None:
    """With two Authorization headers, the hub never acts on a refused one, nor lets a
    patient's token borrow a facility system's reach."""
    patient_token = scene.patient.headers["authorization"]
    facility_token = scene.facility.headers["authorization"]
    for first, second in [
        ("Bearer forged.token.here", facility_token),
        (patient_token, facility_token),
    ]:
        headers = [("authorization", first), ("authorization", second)]
        response = await http.get(f"/fhir/{scene.neighbour}", headers=headers)
        assert response.status_code in (400, 401, 404), (first[:20], response.text)
        if response.status_code != 404:
            client_error(response)


async def test_a_crlf_in_a_header_adds_no_header(http: httpx.AsyncClient, scene: Scene) -> None:
    """Header values with CR or LF never reach the app as two headers; the app answers 401
    for the token and repeats nothing from it in its own headers."""
    token = scene.facility.headers["authorization"]
    for value in [f"{token}\r\nX-Role: admin", "Bearer x\r\n\r\n{}", "Bearer x\nSet-Cookie: a=b"]:
        try:
            response = await http.get("/fhir/Patient", headers={"authorization": value})
        except (httpx.LocalProtocolError, ValueError):
            continue  # refused by the client already, as by any HTTP server
        assert response.status_code == 401, response.text
        assert "set-cookie" not in response.headers
        assert "admin" not in response.headers.get("www-authenticate", "")


async def test_a_crlf_in_a_search_value_sets_no_header(
    http: httpx.AsyncClient, scene: Scene
) -> None:
    hostile = quote("x\r\nSet-Cookie: session=stolen", safe="")
    for method, path in [
        ("GET", f"/fhir/Patient?identifier={hostile}"),
        ("PUT", f"/fhir/Patient?identifier={hostile}"),
    ]:
        body = {"json": patient()} if method == "PUT" else {}
        response = await http.request(method, path, headers=scene.facility.headers, **body)
        assert response.status_code < 500, response.text
        assert "set-cookie" not in response.headers
        assert all("\n" not in v and "\r" not in v for v in response.headers.values())


@pytest.mark.parametrize(
    "condition",
    [
        "identifier[$ne]=1",
        f"identifier={quote(GT)}",
        f"_id={quote(NE)}",
        "_id=.*",
        "$where=1",
        "identifier=x&_id[$ne]=y",
        "",
    ],
)
async def test_if_none_exist_with_operators_never_matches_another_record(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, condition: str
) -> None:
    """A conditional create whose condition holds operators either is refused or creates:
    it never answers with an existing record, its own facility's or another's."""
    marker = unique()
    resource = patient(marker)

    response = await http.post(
        "/fhir/Patient",
        json=resource,
        headers=scene.facility.headers | {"if-none-exist": condition},
    )

    assert response.status_code in (201, 400, 412), response.text
    if response.status_code == 201:
        assert resource["identifier"] == response.json()["identifier"]
    else:
        client_error(response)


@pytest.mark.parametrize(
    "if_match",
    [
        'W/"{"$ne":null}"',
        "*",
        'W/"1" OR 1=1',
        'W/"99999999999999999999999"',
        'W/"-1"',
        'W/"1", W/"2"',
        "x" * 10_000,
    ],
    ids=lambda value: value[:24],
)
async def test_if_match_garbage_changes_nothing(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, if_match: str
) -> None:
    before = await current(secured_app, scene.mine_observation)
    body = observation(scene.mine, id=scene.mine_observation.split("/")[1], status="amended")

    put = await http.put(
        f"/fhir/{scene.mine_observation}",
        json=body,
        headers=scene.facility.headers | {"if-match": if_match},
    )
    delete = await http.delete(
        f"/fhir/{scene.mine_observation}", headers=scene.facility.headers | {"if-match": if_match}
    )

    client_error(put)
    client_error(delete)
    after = await current(secured_app, scene.mine_observation)
    assert after["meta"]["versionId"] == before["meta"]["versionId"]
    assert not after["_hub"].get("del")


@pytest.mark.parametrize("header", ["prefer", "accept", "if-none-exist", "x-forwarded-for"])
async def test_huge_headers_are_not_server_errors(
    http: httpx.AsyncClient, scene: Scene, header: str
) -> None:
    response = await http.get(
        f"/fhir/{scene.mine}", headers=scene.facility.headers | {header: "x" * 200_000}
    )

    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert returned(response.json()) == {scene.mine}


# --- conditional writes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "identifier[$ne]=x",
        f"_id={quote(NE)}",
        "_id=.*",
        f"identifier={quote(GT)}",
        "$where=1",
    ],
)
async def test_conditional_writes_with_operators_touch_no_record(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, query: str
) -> None:
    """A conditional update or delete whose criteria are operators neither overwrites nor
    deletes an existing record (of the caller's facility or another's)."""
    records = [scene.mine, scene.neighbour, scene.other, scene.mine_observation]
    before = {r: (await current(secured_app, r))["meta"]["versionId"] for r in records}

    put = await http.put(
        f"/fhir/Patient?{query}", json=patient(unique()), headers=scene.facility.headers
    )
    delete = await http.delete(f"/fhir/Observation?{query}", headers=scene.facility.headers)

    assert put.status_code in (201, 400, 412), put.text
    assert delete.status_code in (204, 400, 412), delete.text
    after = {r: await current(secured_app, r) for r in records}
    assert {r: d["meta"]["versionId"] for r, d in after.items()} == before
    assert not any(d["_hub"].get("del") for d in after.values())


# --- JSON bodies --------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    """Return a Patient whose extension nests `depth` levels deep, as JSON text (deeper than
    a JSON encoder writes)."""
    opening = b'{"url":"urn:x","extension":[' * depth
    closing = b"]}" * depth
    bottom = b'{"url":"urn:x","valueString":"bottom"}'
    return b'{"resourceType":"Patient","extension":[' + opening + bottom + closing + b"]}"


HOSTILE_BODIES: dict[str, Any] = {
    "dollar-key": patient(**{"$where": "1"}),
    "dollar-value-object": patient(name=[{"family": {"$ne": None}}]),
    "dollar-in-element": patient(identifier=[{"system": "x", "value": "v", "$set": {"a": 1}}]),
    "dotted-key": patient(**{"name.family": "x"}),
    "dotted-nested-key": patient(meta={"tag.code": "x"}),
    "mongo-id": patient(_id="Patient/victim"),
    "proto": patient(__proto__={"admin": True}),
    "constructor": patient(constructor={"prototype": {"admin": True}}),
    "resourceType-object": {"resourceType": {"$ne": None}},
    "resourceType-other": observation("Patient/x"),
    "resourceType-audit": {"resourceType": "AuditEvent", "type": {"code": "rest"}},
    "resourceType-missing": {"name": [{"family": "x"}]},
    "array": [patient()],
    "string": "Patient",
    "null": None,
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
async def test_hostile_bodies_are_client_errors(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, name: str
) -> None:
    """Each hostile Patient body, created or updated, is refused with a 4xx and not stored."""
    body = HOSTILE_BODIES[name]
    new_id = unique("hostile-")
    if isinstance(body, dict) and body.get("resourceType") == "Patient":
        body = body | {"id": new_id}
    before = await secured_app.state.mongo.resources.count_documents({})

    posted = await http.post("/fhir/Patient", json=body, headers=scene.facility.headers)
    updated = await http.put(f"/fhir/Patient/{new_id}", json=body, headers=scene.facility.headers)

    client_error(posted)
    client_error(updated)
    assert await secured_app.state.mongo.resources.count_documents({}) == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"resourceType":"Patient","resourceType":"Observation"}',
        b'{"resourceType":"Patient","birthDate":1e999}',
        b'{"resourceType":"Patient","birthDate":NaN}',
        b'{"resourceType":"Patient","active":Infinity}',
        b'{"resourceType":"Patient"' + b"," * 10 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"resourceType":"Patient","name":[{"family":"\xff\xfe"}]}',
        b'{"resourceType":"Patient","name":[{"family":"\\u0000"}]}',
        nested(65),
        nested(5000),
    ],
    ids=[
        "duplicate-key",
        "1e999",
        "nan",
        "infinity",
        "commas",
        "deep-array",
        "bad-utf8",
        "nul",
        "nested-65",
        "nested-5000",
    ],
)
async def test_malformed_json_is_a_client_error(
    http: httpx.AsyncClient, scene: Scene, raw: bytes
) -> None:
    response = await http.post("/fhir/Patient", content=raw, headers=scene.facility.headers)

    assert response.status_code < 500, response.text
    if response.status_code == 201:  # only the NUL in a string is valid JSON and FHIR
        assert raw.endswith(b'"\\u0000"}]}'), response.text
    else:
        client_error(response)


HUB_FIELDS = [
    {"_hub": {"fac": "OTHER"}},
    {"_hub": {"fac": "OTHER", "del": True, "labels": []}},
    {"_hub.fac": "OTHER"},
    {"meta": {"_hub": {"fac": "OTHER"}}},
]


@pytest.mark.parametrize("fields", HUB_FIELDS, ids=["hub", "hub-del", "hub-dotted", "meta-hub"])
async def test_hub_fields_in_a_body_set_no_attribution(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, fields: dict[str, Any]
) -> None:
    """A body carrying the hub's internal `_hub` field is refused, or its `_hub` ignored: the
    record stays attributed to the facility that wrote it and `_hub` never comes back."""
    marker = unique()
    body = observation(scene.mine, identifier=[{"system": "urn:test:hub", "value": marker}])
    answers = [
        await http.post("/fhir/Observation", json=body | fields, headers=scene.facility.headers)
    ]
    own = await created(http, scene.facility, body)
    own_id = own.split("/")[1]
    answers.append(
        await http.put(
            f"/fhir/{own}", json=body | fields | {"id": own_id}, headers=scene.facility.headers
        )
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": body | fields, "request": {"method": "POST", "url": "Observation"}}],
    }
    answers.append(await http.post("/fhir", json=bundle, headers=scene.facility.headers))

    for response in answers:
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            client_error(response)  # which may name the element it refuses
        else:
            assert "_hub" not in response.text, response.text
    stored = secured_app.state.mongo.resources.find({"identifier.value": marker})
    async for document in stored:
        assert document["_hub"]["fac"] == scene.code, document["_hub"]
        assert not document["_hub"].get("del")
    for reader in (scene.facility, scene.clinician):
        read = await http.get(f"/fhir/{own}", headers=reader.headers)
        assert read.status_code == 200 and "_hub" not in read.text, read.text
    hidden = await http.get(f"/fhir/{own}", headers=scene.other_facility.headers)
    assert hidden.status_code == 404, hidden.text


async def test_a_bundle_with_operator_urls_touches_no_record(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene
) -> None:
    """Conditional entries whose criteria are operators neither overwrite nor delete."""
    records = [scene.mine, scene.neighbour, scene.other, scene.mine_observation]
    before = {r: (await current(secured_app, r))["meta"]["versionId"] for r in records}
    entries = [
        {"request": {"method": "DELETE", "url": "Observation?identifier[$ne]=x"}},
        {
            "resource": patient(unique()),
            "request": {"method": "PUT", "url": "Patient?_id=%7B%22%24ne%22%3Anull%7D"},
        },
        {
            "resource": patient(unique()),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": "identifier[$ne]=1",
            },
        },
        {"request": {"method": "GET", "url": "Patient?_id[$ne]=x"}},
        {"request": {"method": "GET", "url": f"Patient/{quote('.*', safe='')}"}},
    ]
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
        response = await http.post("/fhir", json=bundle, headers=scene.facility.headers)
        no_leak(response, scene.hidden_from("facility"))

    after = {r: await current(secured_app, r) for r in records}
    assert {r: d["meta"]["versionId"] for r, d in after.items()} == before
    assert not any(d["_hub"].get("del") for d in after.values())


# --- the token, login and break-glass forms -------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": '{"$ne": null}', "client_secret": "x"},
        {"client_id[$ne]": "null", "client_secret": "x"},
        {"client_id": ".*", "client_secret": ".*"},
        {"client_id": "^facility-", "client_secret": "x"},
        {"client_id": "REAL", "client_secret": '{"$ne": null}'},
        {"client_id": "REAL", "client_secret[$ne]": "x"},
        {"client_id": "REAL", "client_secret": "REAL' OR '1'='1"},
        {"client_id": "x" * 1_000_000, "client_secret": "x"},
        {
            "client_id": "REAL",
            "client_assertion_type": '{"$ne": null}',
            "client_assertion": '{"$ne": null}',
        },
        {
            "client_id": "REAL",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        },
    ],
    ids=lambda form: "+".join(form)[:40],
)
async def test_token_form_injection_gets_no_token(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, form: dict[str, str]
) -> None:
    real = {k: v.replace("REAL", scene.facility.client_id) for k, v in form.items()}
    real = {"grant_type": "client_credentials"} | real

    response = await http.post("/auth/token", data=real)

    assert response.status_code in (400, 401), response.text
    assert "access_token" not in response.text
    assert response.json()["error"] in ("invalid_client", "invalid_request")


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": '{"$ne": null}'},
        {"grant_type": "client_credentials", "scope": 'system/*.cruds {"$ne": null}'},
        {"grant_type": "client_credentials", "scope": "system/*.cruds?$where=1"},
        {"grant_type": "client_credentials", "scope": "system/$where.cruds"},
    ],
    ids=["grant", "scope-object", "scope-query", "scope-type"],
)
async def test_token_form_injection_with_good_credentials_gets_no_token(
    http: httpx.AsyncClient, scene: Scene, form: dict[str, str]
) -> None:
    credentials = {"client_id": scene.facility.client_id, "client_secret": scene.facility.secret}

    response = await http.post("/auth/token", data=credentials | form)

    assert response.status_code == 400, response.text
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    "form",
    [
        {"username": '{"$ne": null}', "password": "x"},
        {"username[$ne]": "x", "password": "x"},
        {"username": ".*", "password": ".*"},
        {"username": "admin' OR '1'='1", "password": "' OR '1'='1"},
        {"username": "user.*", "password": '{"$gt": ""}'},
        {"username": "x" * 1_000_000, "password": "x"},
    ],
    ids=lambda form: "+".join(f"{k}={v[:12]}" for k, v in form.items()),
)
async def test_login_form_injection_gets_no_token(
    secured_app: Any, http: httpx.AsyncClient, form: dict[str, str]
) -> None:
    await register(secured_app, "clinician", username=unique("user."))

    response = await http.post("/auth/login", data=form)

    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_grant", "invalid_request")
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    "form",
    [
        {"reason": "Unconscious, no relative", "patient": '{"$ne": null}'},
        {"reason": "Unconscious, no relative", "patient": "Patient/.*"},
        {"reason": "Unconscious, no relative", "patient": "Patient/x\r\nSet-Cookie: a=b"},
        {"reason": "x" * 1_000_000},
        {"reason[$ne]": "x"},
    ],
    ids=["patient-object", "patient-pattern", "patient-crlf", "huge", "name"],
)
async def test_break_glass_form_injection_is_a_client_error(
    http: httpx.AsyncClient, scene: Scene, form: dict[str, str]
) -> None:
    headers = {"authorization": scene.clinician.headers["authorization"]}

    response = await http.post("/auth/break-glass", data=form, headers=headers)

    client_error(response)
    assert "access_token" not in response.text


@pytest.mark.parametrize(
    "path", ["/auth/token", "/auth/login", "/auth/break-glass", "/fhir/Patient/_search"]
)
async def test_a_form_larger_than_the_body_limit_is_refused_unread(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, path: str
) -> None:
    """A form body over Settings.max_body_bytes is refused with 413, as a JSON one is: the
    token and login endpoints answer anyone, so reading it whole would let anyone fill the
    hub's memory."""
    limit = secured_app.state.settings.max_body_bytes
    headers = FORM | {"authorization": scene.clinician.headers["authorization"]}
    if path in ("/auth/token", "/auth/login"):
        headers = FORM  # open to anyone

    response = await http.post(path, content=b"a=" + b"x" * limit, headers=headers)

    assert response.status_code == 413, (response.status_code, response.text[:300])


@pytest.mark.parametrize(
    "body",
    [
        {"role": {"$ne": None}},
        {"role": "facility", "facility": {"$ne": None}},
        {"role": "facility", "facility": ["F1"]},
        {"role": "clinician", "facility": "F1", "username": {"$ne": None}},
        {"role": "clinician", "facility": "F1", "username": "u.inj", "password": {"$gt": ""}},
        {"role": "patient", "patient": {"$ne": None}},
        {"role": "clinician", "facility": "F1", "practitioner": {"$ne": None}},
        {"role": "ministry", "name": {"$ne": None}},
        {"role": "facility", "facility": "F1", "jwks": {"keys": [{"$ne": None}]}},
        {"role": "ministry", "_id": "admin-0000000000000000"},
        {"role": "ministry", "$where": "1"},
        {"role": "ministry", "revoked": False, "client_id": "admin-0000000000000000"},
    ],
    ids=[
        "role-object",
        "facility-object",
        "facility-array",
        "username-object",
        "password-object",
        "patient-object",
        "practitioner-object",
        "name-object",
        "jwks-key-object",
        "mongo-id",
        "dollar-key",
        "chosen-client-id",
    ],
)
async def test_admin_client_body_injection_is_a_client_error(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, body: dict[str, Any]
) -> None:
    """A new client's fields are strings of their own syntax (jwks a key set): an operator, an
    array or a field of the store's is refused with 400, and nobody is registered."""
    before = len(await secured_app.state.auth.identities.all())

    response = await http.post("/admin/clients", json=body, headers=scene.admin.headers)

    client_error(response)
    assert "client_secret" not in response.text
    assert len(await secured_app.state.auth.identities.all()) == before


@pytest.mark.parametrize("client_id", [quote(NE, safe=""), ".%2A", "%24where", "admin-"])
async def test_revoking_a_pattern_revokes_nobody(
    secured_app: Any, http: httpx.AsyncClient, scene: Scene, client_id: str
) -> None:
    response = await http.post(f"/admin/clients/{client_id}/revoke", headers=scene.admin.headers)

    client_error(response)
    still = await http.get("/fhir/Patient?_count=1", headers=scene.facility.headers)
    assert still.status_code == 200, still.text
