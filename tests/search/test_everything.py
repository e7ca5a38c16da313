"""Patient $everything and Patient compartment search, across one person's records.

Two Patient records with the same citizen ID (CCCD), made by two facilities, are one person:
$everything on either returns both records' data. A different CCCD is another person.
https://hl7.org/fhir/R4/patient-operation-everything.html
https://hl7.org/fhir/R4/compartmentdefinition-patient.html
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from search.helpers import CCCD, LOINC, Seeded, create, keys, observation, person, walk_pages
from support import unique

GLUCOSE = "2339-0"


def record(cccd: str, facility: str, **extra: Any) -> dict[str, Any]:
    """Return a Patient record of a facility for the person with this CCCD."""
    return {
        **person("Nguyễn", "Thị", "Hoa", **extra),
        "identifier": [
            {"system": CCCD, "value": cccd},
            {"system": f"urn:oid:{facility}", "value": unique("mrn-")},
        ],
    }


@pytest.fixture(scope="module")
async def person_records(client: httpx.AsyncClient) -> Seeded:
    """One person recorded by two facilities, and another person with a CCCD of their own."""
    cccd = unique()
    ids: dict[str, str] = {}
    ids["org"] = await create(client, {"resourceType": "Organization", "name": "Bệnh viện 1"})
    ids["p1"] = await create(
        client,
        record(cccd, "1.1", managingOrganization={"reference": f"Organization/{ids['org']}"}),
    )
    ids["p2"] = await create(client, record(cccd, "2.2"))
    ids["q"] = await create(client, record(unique(), "1.1"))
    ids["o1"] = await create(
        client, observation(f"Patient/{ids['p1']}", effectiveDateTime="2020-05-01")
    )
    ids["o2"] = await create(
        client, observation(f"Patient/{ids['p2']}", effectiveDateTime="2024-05-01")
    )
    ids["glucose"] = await create(
        client,
        observation(
            f"Patient/{ids['p1']}",
            code={"coding": [{"system": LOINC, "code": GLUCOSE}]},
            effectiveDateTime="2024-06-01",
        ),
    )
    ids["o3"] = await create(client, observation(f"Patient/{ids['q']}"))
    ids["e1"] = await create(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{ids['p1']}"},
            "period": {"start": "2024-06-01T08:00:00+07:00", "end": "2024-06-01T09:00:00+07:00"},
        },
    )
    return Seeded("", ids)


ONE_PERSON = {"p1", "p2", "o1", "o2", "glucose", "e1"}


async def everything(
    client: httpx.AsyncClient, data: Seeded, patient: str, **params: str
) -> dict[str, Any]:
    """Run $everything on a named patient; return the Bundle."""
    response = await client.get(
        f"/fhir/Patient/{data.ids[patient]}/$everything", params={"_count": "1000", **params}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle"
    return body


def names(data: Seeded, body: dict[str, Any], modes: tuple[str, ...] = ("match",)) -> set[str]:
    """Return the names of a Bundle's entries in the given search modes."""
    return data.names(
        {e["resource"]["id"] for e in body.get("entry", []) if e["search"]["mode"] in modes}
    )


@pytest.mark.parametrize("patient", ["p1", "p2"])
async def test_everything_returns_both_records_of_one_person(
    client: httpx.AsyncClient, person_records: Seeded, patient: str
) -> None:
    """$everything on either record holds both records' data and nothing of another person."""
    body = await everything(client, person_records, patient)
    assert names(person_records, body) == ONE_PERSON


async def test_everything_adds_referenced_resources(
    client: httpx.AsyncClient, person_records: Seeded
) -> None:
    """Resources the compartment references (the managing organization) are returned too."""
    body = await everything(client, person_records, "p1")
    assert names(person_records, body, ("match", "include")) == ONE_PERSON | {"org"}


async def test_another_cccd_is_another_person(
    client: httpx.AsyncClient, person_records: Seeded
) -> None:
    """A Patient with a different CCCD is not merged with the first person."""
    body = await everything(client, person_records, "q")
    assert names(person_records, body) == {"q", "o3"}


async def test_everything_type_filter(client: httpx.AsyncClient, person_records: Seeded) -> None:
    """_type limits the returned resources to the types listed."""
    body = await everything(client, person_records, "p2", _type="Observation")
    assert names(person_records, body) == {"o1", "o2", "glucose"}
    returned = {e["resource"]["resourceType"] for e in body.get("entry", [])}
    assert returned == {"Observation"}
    body = await everything(client, person_records, "p1", _type="Encounter,Patient")
    assert names(person_records, body) == {"p1", "p2", "e1"}


async def test_everything_care_dates(client: httpx.AsyncClient, person_records: Seeded) -> None:
    """start and end limit dated care to the window; a dated resource outside it is left out."""
    body = await everything(client, person_records, "p1", start="2024-01-01")
    found = names(person_records, body)
    assert {"o2", "glucose", "e1"} <= found and "o1" not in found
    body = await everything(client, person_records, "p1", end="2021-01-01")
    found = names(person_records, body)
    assert "o1" in found and not {"o2", "glucose", "e1"} & found
    body = await everything(client, person_records, "p1", start="2024-05-15", end="2024-12-31")
    found = names(person_records, body)
    assert {"glucose", "e1"} <= found and not {"o1", "o2"} & found


async def test_everything_since(client: httpx.AsyncClient) -> None:
    """_since returns only what changed after the instant."""
    patient = await create(client, person("Sau", "Mốc"))
    old = await create(client, observation(f"Patient/{patient}"))
    await asyncio.sleep(0.05)
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    await asyncio.sleep(0.05)
    new = await create(client, observation(f"Patient/{patient}"))
    response = await client.get(f"/fhir/Patient/{patient}/$everything", params={"_since": since})
    assert response.status_code == 200, response.text
    returned = {e["resource"]["id"] for e in response.json().get("entry", [])}
    assert new in returned and old not in returned


async def test_everything_pages(client: httpx.AsyncClient, person_records: Seeded) -> None:
    """With _count the pages, followed by next, hold each resource once."""
    first = await client.get(
        f"/fhir/Patient/{person_records.ids['p1']}/$everything", params={"_count": "2"}
    )
    pages = await walk_pages(client, first)
    assert len(pages) == 3 and all(len(p) <= 2 for p in pages)
    matched = [k.split("/")[1] for page in pages for k in page]
    assert len(matched) == len(set(matched))
    assert person_records.names(set(matched)) == ONE_PERSON


async def test_compartment_follows_the_compartment_definition(client: httpx.AsyncClient) -> None:
    """An Observation is in a patient's compartment through subject or performer, not through
    another reference such as focus."""
    patient = await create(client, person("Ngăn", "Chứa"))
    performed = await create(client, observation(performer=[{"reference": f"Patient/{patient}"}]))
    focused = await create(client, observation(focus=[{"reference": f"Patient/{patient}"}]))
    response = await client.get(f"/fhir/Patient/{patient}/$everything")
    assert response.status_code == 200, response.text
    matched = {k.split("/")[1] for k in keys(response.json())}
    assert performed in matched and focused not in matched
    response = await client.get(f"/fhir/Patient/{patient}/Observation")
    assert {k.split("/")[1] for k in keys(response.json())} == {performed}


async def test_everything_of_unknown_patient_is_404(client: httpx.AsyncClient) -> None:
    """$everything on a Patient that does not exist is 404."""
    response = await client.get(f"/fhir/Patient/{unique('none-')}/$everything")
    assert response.status_code == 404, response.text


async def test_compartment_search(client: httpx.AsyncClient, person_records: Seeded) -> None:
    """Patient/{id}/Observation searches the patient's Observations with the given parameters."""
    p1 = person_records.ids["p1"]
    response = await client.get(f"/fhir/Patient/{p1}/Observation", params={"code": GLUCOSE})
    assert response.status_code == 200, response.text
    assert person_records.names({k.split("/")[1] for k in keys(response.json())}) == {"glucose"}
    response = await client.get(f"/fhir/Patient/{p1}/Observation", params={"code": "8867-4"})
    found = person_records.names({k.split("/")[1] for k in keys(response.json())})
    assert "o1" in found and not {"glucose", "o3"} & found
    response = await client.get(f"/fhir/Patient/{p1}/Encounter")
    assert person_records.names({k.split("/")[1] for k in keys(response.json())}) == {"e1"}


async def test_compartment_of_unknown_patient_is_404(client: httpx.AsyncClient) -> None:
    """A compartment search on a Patient that does not exist is 404."""
    response = await client.get(f"/fhir/Patient/{unique('none-')}/Observation")
    assert response.status_code == 404, response.text
