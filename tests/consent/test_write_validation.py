"""Patient-privacy Consents are checked as they are written: what the consent engine cannot
enforce is refused (422) naming the element, by every write path, and a transaction with one
such Consent writes nothing.

Real HTTP against the real app; `client` is the system of facility SUITE_FACILITY.
"""

from typing import Any

import httpx
import pytest
from support import FHIR_JSON, SUITE_FACILITY, client_for, find_resources, patient, unique

FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PRIVACY = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
    ]
}
TAG = "urn:ehrhub:test:consent"
# FHIR R4 requires an actor's role; the engine does not read it.
ROLE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
    ]
}


def consent(patient_ref: str, provision: dict[str, Any] | None = None, **extra: Any) -> Any:
    """Return a patient-privacy Consent (permit for treatment unless `provision`), tagged with
    a unique identifier to find it again."""
    found = {
        "resourceType": "Consent",
        "identifier": [{"system": TAG, "value": unique()}],
        "status": "active",
        "scope": PRIVACY,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient_ref},
        "dateTime": "2026-05-01",
        "provision": provision
        or {"type": "permit", "purpose": [{"system": PURPOSE, "code": "TREAT"}]},
    }
    return found | extra


def ident(resource: dict[str, Any]) -> str:
    """Return the search value of a resource's first identifier."""
    first = resource["identifier"][0]
    return f"{first['system']}|{first['value']}"


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    """Create a resource; return its reference."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return f"{resource['resourceType']}/{response.json()['id']}"


def refused_at(response: httpx.Response, path: str, *words: str) -> None:
    """Check a 422 whose one issue points at `path` and says `words`."""
    assert response.status_code == 422, response.text
    [issue] = response.json()["issue"]
    assert issue["expression"] == [path], issue
    assert issue["code"] == "business-rule"
    for word in (path, *words):
        assert word in issue["diagnostics"], issue


@pytest.fixture
async def own_patient(client: httpx.AsyncClient) -> str:
    """Return the reference of a new Patient of the suite's facility."""
    return await created(client, patient())


# Consents the engine cannot read, with the element each refusal names and what it says.
BAD_PROVISIONS = [
    (
        {
            "type": "permit",
            "data": [{"meaning": "authoredby", "reference": {"reference": "Practitioner/x"}}],
        },
        "Consent.provision.data[0].meaning",
        "authoredby cannot be enforced",
    ),
    (
        {"period": {"end": "2030"}},
        "Consent.provision.type",
        "must state its type",
    ),
    (
        {"type": "permit", "provision": [{"class": [{"system": "x", "code": "y"}]}]},
        "Consent.provision.provision[0].type",
        "missing",
    ),
    (
        {"type": "deny", "period": {"start": "2026-06-01", "end": "2026-01-01"}},
        "Consent.provision.period",
        "end is before start",
    ),
    (
        {"type": "permit", "purpose": [{"system": "http://example.org/why", "code": "TREAT"}]},
        "Consent.provision.purpose[0].system",
        PURPOSE,
    ),
    (
        {"type": "deny", "actor": [{"role": ROLE, "reference": {"reference": "CareTeam/t1"}}]},
        "Consent.provision.actor[0].reference",
        "a CareTeam stands for clinicians and facilities",
    ),
    (
        {
            "type": "deny",
            "actor": [{"role": ROLE, "reference": {"reference": "Organization/nowhere"}}],
        },
        "Consent.provision.actor[0].reference.reference",
        "Organization/nowhere is not a known facility",
    ),
    (
        {
            "type": "deny",
            "actor": [
                {"role": ROLE, "reference": {"identifier": {"system": "urn:other", "value": "1"}}}
            ],
        },
        "Consent.provision.actor[0].reference.identifier.system",
        FACILITY_SYSTEM,
    ),
]


@pytest.mark.parametrize(("provision", "path", "says"), BAD_PROVISIONS)
async def test_a_consent_the_engine_cannot_read_is_refused_with_its_path(
    client: httpx.AsyncClient, own_patient: str, provision: Any, path: str, says: str
) -> None:
    bad = consent(own_patient, provision)
    refused_at(await client.post("/fhir/Consent", json=bad, headers=FHIR_JSON), path, says)
    # By update as well, plain and conditional.
    bad["id"] = unique("c")
    refused_at(
        await client.put(f"/fhir/Consent/{bad['id']}", json=bad, headers=FHIR_JSON), path, says
    )
    url = f"/fhir/Consent?identifier={ident(bad)}"
    del bad["id"]
    refused_at(await client.put(url, json=bad, headers=FHIR_JSON), path, says)
    assert await find_resources(client, "Consent", identifier=ident(bad)) == []


async def test_without_a_provision_or_policy_rule_is_refused(
    client: httpx.AsyncClient, own_patient: str
) -> None:
    bad = consent(own_patient)
    del bad["provision"]
    response = await client.post("/fhir/Consent", json=bad, headers=FHIR_JSON)
    refused_at(response, "Consent.provision", "no policyRule OPTIN or OPTOUT")


@pytest.mark.parametrize(
    ("patient_element", "says"),
    [
        (None, "literal reference"),
        ({"identifier": {"system": "urn:x", "value": "1"}}, "literal reference"),
        ({"reference": "Practitioner/p1"}, "not a reference to a Patient"),
        (
            {"reference": "Patient/nobody-has-this-id"},
            f"not a Patient of facility {SUITE_FACILITY}",
        ),
    ],
)
async def test_a_consent_names_a_patient_of_the_writer(
    client: httpx.AsyncClient, patient_element: Any, says: str
) -> None:
    bad = consent("Patient/x")
    if patient_element is None:
        del bad["patient"]
    else:
        bad["patient"] = patient_element
    response = await client.post("/fhir/Consent", json=bad, headers=FHIR_JSON)
    refused_at(response, "Consent.patient.reference", says)


async def test_another_facilitys_patient_is_not_the_writers(
    app: Any, client: httpx.AsyncClient
) -> None:
    async with client_for(app, "facility", facility=unique("F")) as other:
        theirs = await created(other, patient())
    response = await client.post("/fhir/Consent", json=consent(theirs), headers=FHIR_JSON)
    refused_at(response, "Consent.patient.reference", f"{theirs} is not a Patient of facility")


async def test_status_is_required_as_fhir_requires_it(
    client: httpx.AsyncClient, own_patient: str
) -> None:
    bad = consent(own_patient)
    del bad["status"]
    response = await client.post("/fhir/Consent", json=bad, headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Consent.status"]


async def test_good_consents_are_stored(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, own_patient: str
) -> None:
    other = unique("F")
    registered = {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY_SYSTEM, "value": other}],
        "name": "Bệnh viện thử",
    }
    organization = await created(admin, registered)
    good = [
        consent(own_patient),
        consent(
            own_patient,
            {
                "type": "permit",
                "purpose": [
                    {"system": PURPOSE, "code": "TREAT"},
                    {"system": PURPOSE, "code": "ETREAT"},
                ],
                "provision": [
                    {
                        "type": "deny",
                        "actor": [
                            {"role": ROLE, "reference": {"reference": organization}},
                            {
                                "role": ROLE,
                                "reference": {
                                    "identifier": {"system": FACILITY_SYSTEM, "value": "1"}
                                },
                            },
                        ],
                        "securityLabel": [{"system": ACT_CODE, "code": "PSY"}],
                    }
                ],
            },
        ),
        # Absolute references under the hub's base are stored relative, and read so.
        consent(
            f"http://hub.test/fhir/{own_patient}",
            {"type": "permit", "period": {"end": "2030"}},
            policyRule={"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        ),
        # R4's own form: a root without conditions takes its type from policyRule, and
        # nested exceptions say theirs.
        consent(
            own_patient,
            {
                "provision": [
                    {"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "HIV"}]}
                ]
            },
            policyRule={"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        ),
        # Fine-grained provisions: codes (an ICD-10 chapter), a span of clinical time, one
        # record and what refers to it, a practitioner who may not read.
        consent(
            own_patient,
            {
                "type": "permit",
                "dataPeriod": {"start": "2026-01-01"},
                "provision": [
                    {
                        "type": "deny",
                        "code": [
                            {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "V"}]}
                        ],
                    },
                    {
                        "type": "deny",
                        "actor": [{"role": ROLE, "reference": {"reference": "Practitioner/p1"}}],
                    },
                    {
                        "type": "deny",
                        "data": [
                            {"meaning": "dependents", "reference": {"reference": own_patient}}
                        ],
                    },
                ],
            },
        ),
        # Withdrawing a consent always works: the engine never reads a withdrawn one.
        consent(own_patient, {"type": "permit", "code": [{"text": "anything"}]}, status="inactive"),
        # A Consent of another scope is none of the consent engine's business.
        consent(
            own_patient,
            {"type": "permit", "code": [{"text": "anything"}]},
            scope={"coding": [{"system": PRIVACY["coding"][0]["system"], "code": "research"}]},
        ),
    ]
    for resource in good:
        reference = await created(client, resource)
        stored = (await client.get(f"/fhir/{reference}")).json()
        assert stored["patient"] == {"reference": own_patient}
        assert stored["identifier"] == resource["identifier"]


async def test_a_transaction_with_one_bad_consent_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    person = patient()
    urn = f"urn:uuid:{unique()}"
    good = consent(urn)
    bad = consent(
        urn,
        {"type": "permit", "data": [{"meaning": "authoredby", "reference": {"reference": urn}}]},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": person, "request": {"method": "POST", "url": "Patient"}},
            {"resource": good, "request": {"method": "POST", "url": "Consent"}},
            {"resource": bad, "request": {"method": "POST", "url": "Consent"}},
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    refused_at(response, "Bundle.entry[2].resource.provision.data[0].meaning", "authoredby")
    assert await find_resources(client, "Patient", identifier=ident(person)) == []
    assert await find_resources(client, "Consent", identifier=ident(good)) == []

    # Without the bad one, the Consent names the Patient of the same transaction.
    bundle["entry"] = bundle["entry"][:2]
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    [stored] = await find_resources(client, "Consent", identifier=ident(good))
    [written] = await find_resources(client, "Patient", identifier=ident(person))
    assert stored["patient"] == {"reference": f"Patient/{written['id']}"}


async def test_a_consent_naming_no_patient_entry_of_its_bundle_is_refused(
    client: httpx.AsyncClient,
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": consent(f"urn:uuid:{unique()}"),
                "request": {"method": "POST", "url": "Consent"},
            }
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    refused_at(response, "Bundle.entry[0].resource.patient.reference", "no Patient entry")


async def test_a_batch_refuses_the_bad_consent_in_its_own_entry(
    client: httpx.AsyncClient, own_patient: str
) -> None:
    good = consent(own_patient)
    bad = consent(
        own_patient,
        {"type": "deny", "actor": [{"role": ROLE, "reference": {"reference": "Group/g1"}}]},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": bad, "request": {"method": "POST", "url": "Consent"}},
            {"resource": good, "request": {"method": "POST", "url": "Consent"}},
        ],
    }
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"].startswith("422")
    [issue] = first["response"]["outcome"]["issue"]
    assert issue["expression"] == ["Bundle.entry[0].resource.provision.actor[0].reference"]
    assert second["response"]["status"].startswith("201")
    assert await find_resources(client, "Consent", identifier=ident(bad)) == []
    assert len(await find_resources(client, "Consent", identifier=ident(good))) == 1
