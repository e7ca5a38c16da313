"""A facility system cannot claim another facility from inside a resource: a contained
resource's identifier, meta.tag or meta.source is refused (403, naming the element) as a
top-level claim is, in a create, an update or a transaction, and nothing is written."""

from typing import Any

import pytest
from support import FHIR_JSON, FacilityClients, find_resources, patient, unique

from hub.settings import Settings

FACILITY_SYSTEM = Settings().facility_system
OWN, OTHER = "79001", "79002"
CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"


def tagged(code: str) -> dict[str, Any]:
    """Return the meta of a resource tagged with a facility."""
    return {"tag": [{"system": FACILITY_SYSTEM, "code": code}]}


def organization(code: str) -> dict[str, Any]:
    """Return an Organization naming a facility by the national identifier."""
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY_SYSTEM, "value": code}],
        "name": f"Facility {code}",
    }


def ward(code: str, claim: str) -> dict[str, Any]:
    """Return a contained Organization that claims a facility by `claim`: its identifier, a
    meta.tag or its meta.source."""
    if claim == "identifier":
        return organization(code) | {"id": "ward"}
    meta = tagged(code) if claim == "tag" else {"source": f"{FACILITY_SYSTEM}/{code}"}
    return {"resourceType": "Organization", "id": "ward", "name": "Ward", "meta": meta}


def holding(contained: dict[str, Any], marker: str) -> dict[str, Any]:
    """Return a Patient with a contained resource that its record refers to."""
    return patient(
        marker,
        contained=[contained],
        managingOrganization={"reference": f"#{contained['id']}"},
    )


CONTAINED = {
    "identifier": "contained[0].identifier[0]",
    "tag": "contained[0].meta.tag[0]",
    "source": "contained[0].meta.source",
}


@pytest.mark.parametrize("claim", list(CONTAINED))
async def test_a_contained_resource_claiming_another_facility_is_refused(
    facility_client: FacilityClients, claim: str
) -> None:
    http = await facility_client(OWN)
    marker = unique()

    response = await http.post(
        "/fhir/Patient", json=holding(ward(OTHER, claim), marker), headers=FHIR_JSON
    )

    assert response.status_code == 403, response.text
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert diagnostics.startswith(f"Patient.{CONTAINED[claim]} claims facility {OTHER}")
    assert await find_resources(http, "Patient", identifier=f"{CCCD}|{marker}") == []


@pytest.mark.parametrize("claim", list(CONTAINED))
async def test_a_contained_resource_claiming_its_own_facility_is_written(
    facility_client: FacilityClients, claim: str
) -> None:
    http = await facility_client(OWN)

    response = await http.post(
        "/fhir/Patient", json=holding(ward(OWN, claim), unique()), headers=FHIR_JSON
    )

    assert response.status_code == 201, response.text


async def test_a_transaction_entry_with_a_contained_claim_is_refused_whole(
    facility_client: FacilityClients,
) -> None:
    http = await facility_client(OWN)
    markers = [unique() for _ in range(3)]
    resources = [patient(markers[0]), patient(markers[1])]
    resources.append(holding(ward(OTHER, "tag"), markers[2]))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Patient"}} for r in resources
        ],
    }

    response = await http.post("/fhir", json=bundle, headers=FHIR_JSON)

    assert response.status_code == 403, response.text
    issue = response.json()["issue"][0]
    assert issue["diagnostics"].startswith(
        f"Bundle.entry[2].resource.contained[0].meta.tag[0] claims facility {OTHER}"
    )
    for marker in markers:
        assert await find_resources(http, "Patient", identifier=f"{CCCD}|{marker}") == []


async def test_a_bare_meta_tag_claiming_another_facility_is_refused(
    facility_client: FacilityClients,
) -> None:
    """meta.tag sent as one object instead of an array never slips through: the structure
    check refuses it (and the claims check would read it as a claim)."""
    http = await facility_client(OWN)
    marker = unique()
    bare = patient(marker, meta={"tag": {"system": FACILITY_SYSTEM, "code": OTHER}})

    response = await http.post("/fhir/Patient", json=bare, headers=FHIR_JSON)

    assert response.status_code in (400, 403), response.text
    assert response.json()["issue"][0]["expression"] == ["Patient.meta.tag"]
    assert await find_resources(http, "Patient", identifier=f"{CCCD}|{marker}") == []


async def test_an_update_with_a_contained_claim_is_refused(
    facility_client: FacilityClients,
) -> None:
    http = await facility_client(OWN)
    marker = unique()
    created = await http.post("/fhir/Patient", json=patient(marker), headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    changed = holding(ward(OTHER, "identifier"), marker) | {"id": pid}

    response = await http.put(f"/fhir/Patient/{pid}", json=changed, headers=FHIR_JSON)

    assert response.status_code == 403, response.text
    assert f"Patient.contained[0].identifier[0] claims facility {OTHER}" in response.text
    [kept] = await find_resources(http, "Patient", identifier=f"{CCCD}|{marker}")
    assert "contained" not in kept and kept["meta"]["versionId"] == "1"
