"""FHIR passthrough: a Synthea Bundle and the same resources as NDJSON, sent to the real hub."""

import json
from pathlib import Path

import httpx
from support import FIXTURES, FacilityClients, find_resources, fixture_json, transact

from adapters.base import FACILITY_SYSTEM, Facility, Rejection
from adapters.fhir import parse
from adapters.fhir.attribution import source
from adapters.fhir.group import FHIR_ID_KIND, hub_id

SYNTHEA = FIXTURES / "synthea" / "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
PATIENT = "d78af07c-9cb9-4f31-9b11-c45a28f2eec8"  # its id in the Bundle


async def counts(client: httpx.AsyncClient, patient_id: str) -> dict[str, int]:
    """Return how many resources of each type the hub holds about a patient."""
    types = ("Encounter", "Observation", "Immunization", "DiagnosticReport", "Condition")
    return {t: len(await find_resources(client, t, patient=f"Patient/{patient_id}")) for t in types}


async def test_a_synthea_bundle_passes_through_once_with_attribution(
    facility_client: FacilityClients,
) -> None:
    facility = Facility("01901", "Bệnh viện Bạch Mai")
    client = await facility_client(facility.code)
    (bundle,) = parse(SYNTHEA, facility)
    await transact(client, bundle)
    (patient,) = await find_resources(
        client, "Patient", identifier=f"{facility.system(FHIR_ID_KIND)}|{PATIENT}"
    )
    first = await counts(client, patient["id"])
    assert first["Observation"] == 48 and first["Encounter"] == 3

    (again,) = parse(SYNTHEA, facility)
    await transact(client, again)
    (same,) = await find_resources(
        client, "Patient", identifier=f"{facility.system(FHIR_ID_KIND)}|{PATIENT}"
    )
    assert same["id"] == patient["id"]
    assert await counts(client, patient["id"]) == first

    assert patient["meta"]["source"] == source(facility)
    assert {"system": FACILITY_SYSTEM, "code": "01901"} in [
        {k: t[k] for k in ("system", "code")} for t in patient["meta"]["tag"]
    ]
    (org,) = await find_resources(client, "Organization", identifier=f"{FACILITY_SYSTEM}|01901")
    assert patient["managingOrganization"]["reference"] == f"Organization/{org['id']}"
    (encounter, *_) = await find_resources(client, "Encounter", patient=f"Patient/{patient['id']}")
    # Synthea names its own serviceProvider: kept, not overwritten.
    assert encounter["serviceProvider"]["reference"] != f"Organization/{org['id']}"
    observation = (await find_resources(client, "Observation", patient=f"Patient/{patient['id']}"))[
        0
    ]
    original = next(i for i in observation["identifier"] if FHIR_ID_KIND in i["system"])
    assert observation["id"] == hub_id(facility, "Observation", original["value"])


async def test_ndjson_in_small_groups_resolves_references_and_is_idempotent(
    facility_client: FacilityClients, tmp_path: Path
) -> None:
    facility = Facility("79002", "Bệnh viện Chợ Rẫy")
    client = await facility_client(facility.code)
    entries = fixture_json("synthea", SYNTHEA.name)["entry"]
    lines = []
    for entry in entries:
        resource = entry["resource"]
        # Bulk exports refer by `Type/id`, not by the transaction's urn:uuid.
        text = json.dumps(resource, ensure_ascii=False)
        for other in entries:
            rtype, rid = other["resource"]["resourceType"], other["resource"]["id"]
            text = text.replace(f'"{other["fullUrl"]}"', f'"{rtype}/{rid}"')
        lines.append(text)
    # Patients last: every group refers to resources of another group.
    lines.sort(key=lambda line: '"resourceType": "Patient"' in line)
    ndjson = tmp_path / "export.ndjson"
    ndjson.write_text("\ufeff" + "\n".join(lines) + "\n\nnot json\n", encoding="utf-8")

    outputs = list(parse(ndjson, facility, group_size=20))
    (bad,) = [o for o in outputs if isinstance(o, Rejection)]
    assert bad.source == f"export.ndjson line {len(lines) + 2}"
    bundles = [o for o in outputs if not isinstance(o, Rejection)]
    assert len(bundles) == 4
    for bundle in bundles:
        await transact(client, bundle)
    (patient,) = await find_resources(
        client, "Patient", identifier=f"{facility.system(FHIR_ID_KIND)}|{PATIENT}"
    )
    assert patient["meta"]["source"] == source(facility)
    first = await counts(client, patient["id"])
    assert first["Observation"] == 48 and first["Immunization"] == 4
    for output in parse(ndjson, facility, group_size=20):
        if not isinstance(output, Rejection):
            statuses = await transact(client, output)
            assert not [s for s in statuses[1:] if s.startswith("201")], statuses
    assert await counts(client, patient["id"]) == first
