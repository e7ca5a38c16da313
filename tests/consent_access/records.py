"""Builders of the records and consents the access tests write, and what they read back."""

import uuid
from typing import Any

import httpx
from support import FHIR_JSON, returned

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
PSY = {"system": ACT_CODE, "code": "PSY"}


def citizen_id() -> str:
    """Return a new 12-digit citizen ID."""
    return str(uuid.uuid4().int)[-12:]


def consent(patient_id: str, status: str = "active", **provision: Any) -> dict[str, Any]:
    """Return a patient-privacy Consent of a patient with this root provision."""
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "provision": provision,
    }


def actor(facility: str) -> dict[str, Any]:
    """Return a provision actor naming a facility by its national code."""
    return {
        "role": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                }
            ]
        },
        "reference": {"identifier": {"system": FACILITY_SYSTEM, "value": facility}},
    }


async def create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    """Create a resource; return its id."""
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def update(client: httpx.AsyncClient, resource: dict[str, Any]) -> None:
    """Update a resource by its id."""
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    response = await client.put(url, json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text


async def found(client: httpx.AsyncClient, url: str, **params: str) -> set[str]:
    """Return the "Type/id" of every resource a search or history answers (404: nothing)."""
    response = await client.get(url, params=params)
    if response.status_code == 404:
        return set()
    assert response.status_code == 200, response.text
    return returned(response.json())


async def readable(client: httpx.AsyncClient, reference: str) -> bool:
    """Tell whether a read of "Type/id" (or a vread "Type/id/_history/n") answers 200."""
    response = await client.get(f"/fhir/{reference}")
    assert response.status_code in (200, 404, 410), response.text
    return response.status_code == 200
