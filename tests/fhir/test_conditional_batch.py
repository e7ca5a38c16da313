"""Black-box tests of transactions whose conditional entries are answered together.

A transaction reads ahead: one search answers every conditional entry whose criteria name
exact index keys, and the other criteria are searched entry by entry. Either way each entry
must get what it would get alone. https://hl7.org/fhir/R4/http.html#trules
"""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from pymongo.errors import ConnectionFailure
from support import FHIR_JSON, patient, unique

from hub.fhir.conditional import parse_criteria
from hub.fhir.result import Context
from hub.search import engine
from hub.store.scope import UNRESTRICTED

SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
ORG_SYSTEM = "http://fhir.hl7.org.vn/core/sid/facility"


def token(value: str, system: str = SYSTEM) -> str:
    """Return the identifier search token of a value."""
    return f"{system}|{value}"


def organization(value: str, name: str = "Bệnh viện") -> dict[str, Any]:
    """Return an Organization with one identifier in the facility system."""
    return {
        "resourceType": "Organization",
        "identifier": [{"system": ORG_SYSTEM, "value": value}],
        "name": name,
    }


def practitioner(value: str) -> dict[str, Any]:
    """Return a Practitioner whose identifier is in the citizen-ID system, as Patients' are."""
    return {
        "resourceType": "Practitioner",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": "Trần"}],
    }


def conditional_put(resource: dict[str, Any], criteria: str, full_url: str | None = None) -> Any:
    """Return an entry that PUTs a resource to `Type?criteria`."""
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}?{criteria}"},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def conditional_post(resource: dict[str, Any], criteria: str) -> dict[str, Any]:
    """Return an entry that POSTs a resource unless `criteria` match one."""
    return {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": criteria},
    }


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    """Return a transaction Bundle of these entries."""
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """POST a Bundle to the base, asking for the resources in the response."""
    headers = {**FHIR_JSON, "prefer": "return=representation"}
    return await client.post("/fhir", json=body, headers=headers)


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    """Create a resource; return its id."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def found(client: httpx.AsyncClient, resource_type: str, **params: str) -> list[Any]:
    """Return the resources a search finds."""
    response = await client.get(f"/fhir/{resource_type}", params={"_count": "100", **params})
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def statuses(response: httpx.Response) -> list[str]:
    """Return the status codes of a transaction-response's entries."""
    assert response.status_code == 200, response.text
    return [e["response"]["status"].split()[0] for e in response.json()["entry"]]


def location_id(entry: dict[str, Any]) -> str:
    """Return the id of the resource a transaction-response entry answers with."""
    return str(entry["resource"]["id"])


async def test_some_entries_match_and_some_do_not(client: httpx.AsyncClient) -> None:
    """Matched conditional updates update, unmatched ones create; matched conditional creates
    return the existing resource and create nothing, unmatched ones create."""
    known, new, known_org, new_org = unique(), unique(), unique(), unique()
    patient_id = await create(client, patient(known))
    org_id = await create(client, organization(known_org, "Old name"))
    response = await send(
        client,
        transaction(
            conditional_put(patient(known, gender="female"), f"identifier={token(known)}"),
            conditional_put(patient(new), f"identifier={token(new)}"),
            conditional_post(organization(known_org), f"identifier={token(known_org, ORG_SYSTEM)}"),
            conditional_post(organization(new_org), f"identifier={token(new_org, ORG_SYSTEM)}"),
        ),
    )
    assert statuses(response) == ["200", "201", "200", "201"]
    entries = response.json()["entry"]
    assert location_id(entries[0]) == patient_id
    assert location_id(entries[2]) == org_id
    [updated] = await found(client, "Patient", identifier=token(known))
    assert updated["id"] == patient_id and updated["gender"] == "female"
    assert updated["meta"]["versionId"] == "2"
    assert len(await found(client, "Patient", identifier=token(new))) == 1
    [kept] = await found(client, "Organization", identifier=token(known_org, ORG_SYSTEM))
    assert kept["name"] == "Old name" and kept["meta"]["versionId"] == "1"
    assert len(await found(client, "Organization", identifier=token(new_org, ORG_SYSTEM))) == 1


async def test_every_clause_counts_not_only_the_identifier(client: httpx.AsyncClient) -> None:
    """Criteria of an identifier and a birth date match only a resource with both."""
    value = unique()
    patient_id = await create(client, patient(value, birthDate="1985-04-12"))
    response = await send(
        client,
        transaction(
            conditional_put(
                patient(value, birthDate="1990-01-01"),
                f"identifier={token(value)}&birthdate=1990-01-01",
            ),
        ),
    )
    assert statuses(response) == ["201"]
    patients = await found(client, "Patient", identifier=token(value))
    assert sorted(p["birthDate"] for p in patients) == ["1985-04-12", "1990-01-01"]
    assert patient_id in {p["id"] for p in patients}


async def test_the_same_identifier_on_another_type_is_no_match(client: httpx.AsyncClient) -> None:
    """A Practitioner's criteria do not match a Patient carrying the same identifier."""
    value = unique()
    patient_id = await create(client, patient(value))
    response = await send(
        client,
        transaction(
            conditional_put(practitioner(value), f"identifier={token(value)}"),
            conditional_put(patient(value, gender="other"), f"identifier={token(value)}"),
        ),
    )
    assert statuses(response) == ["201", "200"]
    assert location_id(response.json()["entry"][1]) == patient_id
    assert len(await found(client, "Practitioner", identifier=token(value))) == 1
    assert len(await found(client, "Patient", identifier=token(value))) == 1


@pytest.mark.parametrize(
    "criteria",
    [
        "identifier={value}",  # any system: a key range, searched on its own
        "family=Nguyễn&birthdate=1985-04-12&identifier:not=x&identifier={value}",
        "_id={id}",
        "name=Nguy&identifier={system}|{value}",
    ],
    ids=["code-only-token", "with-not", "id", "string-and-token"],
)
async def test_criteria_of_every_form_match_alongside_batched_ones(
    client: httpx.AsyncClient, criteria: str
) -> None:
    """Criteria of any form match in a bundle whose other entries are answered together."""
    value, other = unique(), unique()
    patient_id = await create(client, patient(value))
    org_value = unique()
    org_id = await create(client, organization(org_value))
    text = criteria.format(value=value, id=patient_id, system=SYSTEM)
    response = await send(
        client,
        transaction(
            conditional_put(patient(value, gender="female"), text),
            conditional_post(organization(org_value), f"identifier={token(org_value, ORG_SYSTEM)}"),
            conditional_put(patient(other), f"identifier={token(other)}"),
        ),
    )
    assert statuses(response) == ["200", "200", "201"]
    entries = response.json()["entry"]
    assert location_id(entries[0]) == patient_id
    assert location_id(entries[1]) == org_id
    current = (await client.get(f"/fhir/Patient/{patient_id}")).json()
    assert current["gender"] == "female"


async def test_two_entries_matching_one_resource_is_400(client: httpx.AsyncClient) -> None:
    """Two entries whose criteria (of different forms) match the same resource answer 400,
    and nothing of the bundle is written."""
    value, other = unique(), unique()
    patient_id = await create(client, patient(value))
    response = await send(
        client,
        transaction(
            conditional_put(patient(other), f"identifier={token(other)}"),
            conditional_put(patient(value, gender="female"), f"identifier={token(value)}"),
            conditional_post(patient(value), f"identifier={value}"),
        ),
    )
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Patient/{patient_id}")).json()["meta"]["versionId"] == "1"
    assert await found(client, "Patient", identifier=token(other)) == []


async def test_criteria_matching_two_resources_is_412_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    """A conditional update matching two resources refuses the whole transaction with 412."""
    value, new = unique(), unique()
    await create(client, patient(value))
    await create(client, patient(value))
    response = await send(
        client,
        transaction(
            conditional_put(patient(new), f"identifier={token(new)}"),
            conditional_put(patient(value, gender="female"), f"identifier={token(value)}"),
        ),
    )
    assert response.status_code == 412, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].request.url"]
    assert await found(client, "Patient", identifier=token(new)) == []


async def test_conditional_create_matching_two_resources_is_412(client: httpx.AsyncClient) -> None:
    """ifNoneExist matching two resources answers 412, naming the entry."""
    value = unique()
    await create(client, patient(value))
    await create(client, patient(value))
    response = await send(
        client,
        transaction(
            conditional_post(patient(unique()), f"identifier={token(unique())}"),
            conditional_post(patient(value), f"identifier={token(value)}"),
        ),
    )
    assert response.status_code == 412, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.ifNoneExist"]


async def test_a_deleted_match_is_no_match(client: httpx.AsyncClient) -> None:
    """A resource deleted before, or by an earlier DELETE of the same bundle, is not matched."""
    gone, deleted_here = unique(), unique()
    gone_id = await create(client, patient(gone))
    assert (await client.delete(f"/fhir/Patient/{gone_id}")).status_code in (200, 204)
    here_id = await create(client, patient(deleted_here))
    response = await send(
        client,
        transaction(
            conditional_put(patient(gone), f"identifier={token(gone)}"),
            conditional_post(patient(deleted_here), f"identifier={token(deleted_here)}"),
            {"request": {"method": "DELETE", "url": f"Patient/{here_id}"}},
        ),
    )
    assert statuses(response) == ["201", "201", "204"]
    entries = response.json()["entry"]
    assert location_id(entries[0]) != gone_id
    assert location_id(entries[1]) != here_id


async def test_unmatched_update_with_an_id_updates_that_resource(
    client: httpx.AsyncClient,
) -> None:
    """A conditional update that matches nothing writes to the body's id, a new version if
    that resource exists."""
    value, new = unique(), unique()
    patient_id = await create(client, patient(value))
    new_id = unique("pt-")
    response = await send(
        client,
        transaction(
            conditional_put(patient(unique(), id=patient_id), f"identifier={token(unique())}"),
            conditional_put(patient(new, id=new_id), f"identifier={token(new)}"),
        ),
    )
    assert statuses(response) == ["200", "201"]
    assert (await client.get(f"/fhir/Patient/{patient_id}")).json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/fhir/Patient/{new_id}")).status_code == 200


async def test_references_to_matched_and_created_entries_resolve(
    client: httpx.AsyncClient,
) -> None:
    """urn:uuid references point at the matched resource or at the created one."""
    known, new = unique(), unique()
    patient_id = await create(client, patient(known))
    known_urn, new_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"

    def encounter(subject: str) -> dict[str, Any]:
        return {
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": subject},
            },
            "request": {"method": "POST", "url": "Encounter"},
        }

    response = await send(
        client,
        transaction(
            conditional_put(patient(known), f"identifier={token(known)}", known_urn),
            conditional_put(patient(new), f"identifier={token(new)}", new_urn),
            encounter(known_urn),
            encounter(new_urn),
        ),
    )
    assert statuses(response) == ["200", "201", "201", "201"]
    entries = response.json()["entry"]
    new_id = location_id(entries[1])
    subjects = set()
    for entry in entries[2:]:
        stored = (await client.get(f"/fhir/Encounter/{location_id(entry)}")).json()
        subjects.add(stored["subject"]["reference"])
    assert subjects == {f"Patient/{patient_id}", f"Patient/{new_id}"}


async def test_concurrent_bundles_of_shared_records_create_each_once(
    client: httpx.AsyncClient,
) -> None:
    """Eight transactions at once, each conditionally writing the same patient, facility and
    practitioner with a record of its own: all succeed, and each shared record exists once."""
    person, facility, doctor = unique(), unique(), unique()

    def bundle(n: int) -> dict[str, Any]:
        return transaction(
            conditional_put(patient(person), f"identifier={token(person)}"),
            conditional_post(organization(facility), f"identifier={token(facility, ORG_SYSTEM)}"),
            conditional_put(practitioner(doctor), f"identifier={token(doctor)}"),
            conditional_put(patient(f"{person}-{n}"), f"identifier={token(f'{person}-{n}')}"),
        )

    responses = await asyncio.gather(*(send(client, bundle(n)) for n in range(8)))
    for response in responses:
        assert all(s in ("200", "201") for s in statuses(response)), response.text
    assert len(await found(client, "Patient", identifier=token(person))) == 1
    assert len(await found(client, "Organization", identifier=token(facility, ORG_SYSTEM))) == 1
    assert len(await found(client, "Practitioner", identifier=token(doctor))) == 1
    for n in range(8):
        assert len(await found(client, "Patient", identifier=token(f"{person}-{n}"))) == 1


async def test_identifier_criteria_are_answered_by_one_read(
    client: httpx.AsyncClient, app: Any
) -> None:
    """The search engine answers exact-key criteria together and leaves the others to `find`,
    and each answer is what `find` gives."""
    ctx = Context(
        store=app.state.store,
        settings=app.state.settings,
        scope=UNRESTRICTED,
        base="http://hub.test/fhir",
    )
    value = unique()
    patient_id = await create(client, patient(value))
    texts = [
        ("Patient", f"identifier={token(value)}"),
        ("Patient", f"identifier={token(unique())}"),
        ("Practitioner", f"identifier={token(value)}"),
        ("Patient", f"identifier={value}"),  # any system: a range, left to find
        ("Patient", f"_id={patient_id}"),  # by _id: left to find
    ]
    criteria = [parse_criteria(t, q, "here") for t, q in texts]
    answers = await engine.find_each(ctx, [c.query for c in criteria])
    assert [None if a is None else [s.id for s in a] for a in answers] == [
        [patient_id],
        [],
        [],
        None,
        None,
    ]
    for c, answer in zip(criteria, answers, strict=True):
        alone = [s.id for s in await engine.find(ctx, c.query)]
        assert answer is None or [s.id for s in answer] == alone


async def test_a_transaction_retried_after_a_lost_connection_writes_once(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection lost while claiming the criteria aborts the attempt; the retry reads
    ahead again, from the bundle as sent, and writes everything once."""
    store = app.state.store
    claim = store.claim_conditions
    lost: list[int] = []

    async def claim_once_lost(keys: list[str], session: Any) -> None:
        if not lost:
            lost.append(len(keys))
            error = ConnectionFailure("connection lost (injected by the test)")
            error._add_error_label("TransientTransactionError")
            raise error
        await claim(keys, session)

    monkeypatch.setattr(store, "claim_conditions", claim_once_lost)
    known, new = unique(), unique()
    patient_id = await create(client, patient(known))
    response = await send(
        client,
        transaction(
            conditional_put(patient(known, gender="female"), f"identifier={token(known)}"),
            conditional_put(patient(new), f"identifier={token(new)}"),
            conditional_post(organization(new), f"identifier={token(new, ORG_SYSTEM)}"),
        ),
    )
    assert lost == [2]
    assert statuses(response) == ["200", "201", "201"]
    assert location_id(response.json()["entry"][0]) == patient_id
    [created] = await found(client, "Patient", identifier=token(new))
    assert created["meta"]["versionId"] == "1"
    assert len(await found(client, "Organization", identifier=token(new, ORG_SYSTEM))) == 1
    current = (await client.get(f"/fhir/Patient/{patient_id}")).json()
    assert current["meta"]["versionId"] == "2" and current["gender"] == "female"
