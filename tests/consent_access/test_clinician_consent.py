"""What a clinician sees of records other facilities hold: their patient's consent decides.

One person is held at two facilities: at A (where the consent is written) and at B (where the
clinician works). Each test gives the person at A a different Consent, then reads as the
clinician at B through every path: read, search, totals, `_include`, `_revinclude`, chained
search, compartment search and `$everything`. Real HTTP against the real app.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from support import (
    FHIR_JSON,
    another_hub,
    client_for,
    hub_client,
    observation,
    patient,
    returned,
    unique,
)

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


@dataclass
class Person:
    """One person's records at facilities A and B, and the clients that read them."""

    cccd: str
    at_a: str  # Patient id at A
    at_b: str  # Patient id at B
    observation_a: str
    psychiatric_a: str  # an Observation at A labelled PSY
    condition_a: str
    observation_b: str
    a: httpx.AsyncClient  # facility A's system
    clinician: httpx.AsyncClient  # a clinician at B


@pytest.fixture(scope="module")
async def facilities(app: Any) -> AsyncIterator[tuple[str, str, dict[str, httpx.AsyncClient]]]:
    """Two facilities' systems and a clinician at the second."""
    code_a, code_b = unique("CA"), unique("CB")
    async with (
        client_for(app, "facility", facility=code_a) as a,
        client_for(app, "facility", facility=code_b) as b,
        client_for(app, "clinician", facility=code_b) as clinician,
    ):
        yield code_a, code_b, {"a": a, "b": b, "clinician": clinician}


async def _create(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    response = await client.post(
        f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def person(
    facilities: tuple[str, str, dict[str, httpx.AsyncClient]],
) -> Person:
    """A new person with records at A and at B."""
    _, _, clients = facilities
    cccd = str(uuid.uuid4().int)[-12:]
    a, b = clients["a"], clients["b"]
    at_a = await _create(a, patient(cccd))
    at_b = await _create(b, patient(cccd))
    psy = {"security": [{"system": ACT_CODE, "code": "PSY"}]}
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{at_a}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
    }
    return Person(
        cccd=cccd,
        at_a=at_a,
        at_b=at_b,
        observation_a=await _create(a, observation(f"Patient/{at_a}")),
        psychiatric_a=await _create(a, observation(f"Patient/{at_a}", meta=psy)),
        condition_a=await _create(a, condition),
        observation_b=await _create(b, observation(f"Patient/{at_b}")),
        a=a,
        clinician=clients["clinician"],
    )


def consent(patient_id: str, **provision: Any) -> dict[str, Any]:
    """Return an active patient-privacy Consent of a patient with this root provision."""
    return {
        "resourceType": "Consent",
        "status": "active",
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
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": provision,
    }


async def give(person: Person, **provision: Any) -> None:
    """Store a Consent for the person's record at A, written by A."""
    await _create(person.a, consent(person.at_a, **provision))


async def seen(person: Person, url: str, **params: str) -> set[str]:
    """Return the "Type/id" of every entry the clinician gets from a search, checking that
    the total counts exactly those (nothing when the search's patient is out of sight)."""
    response = await person.clinician.get(url, params=params)
    if response.status_code == 404 and url.startswith("/fhir/Patient/"):
        return set()
    assert response.status_code == 200, response.text
    bundle = response.json()
    found = returned(bundle)
    if "total" in bundle:
        matches = [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
        assert bundle["total"] == len(matches), bundle
    return found


def held_at_a(person: Person) -> set[str]:
    return {
        f"Patient/{person.at_a}",
        f"Observation/{person.observation_a}",
        f"Observation/{person.psychiatric_a}",
        f"Condition/{person.condition_a}",
    }


async def every_path(person: Person) -> set[str]:
    """Return everything of the person at A the clinician reaches by any path."""
    found: set[str] = set()
    for kind, rid in [
        ("Patient", person.at_a),
        ("Observation", person.observation_a),
        ("Observation", person.psychiatric_a),
        ("Condition", person.condition_a),
    ]:
        response = await person.clinician.get(f"/fhir/{kind}/{rid}")
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            found.add(f"{kind}/{rid}")
    national = f"{CCCD}|{person.cccd}"
    found |= await seen(person, "/fhir/Patient", identifier=national)
    found |= await seen(
        person, "/fhir/Patient", identifier=national, _revinclude="Observation:subject"
    )
    found |= await seen(person, "/fhir/Observation", **{"subject.identifier": national})
    found |= await seen(person, "/fhir/Observation", patient=f"Patient/{person.at_a}")
    found |= await seen(
        person,
        "/fhir/Observation",
        patient=f"Patient/{person.at_a}",
        _include="Observation:subject",
    )
    found |= await seen(person, f"/fhir/Patient/{person.at_b}/$everything")
    found |= await seen(person, f"/fhir/Patient/{person.at_a}/Observation")
    return found & held_at_a(person)


async def test_without_consent_nothing_held_elsewhere_is_seen(person: Person) -> None:
    assert await every_path(person) == set()
    # Its own facility's records are there all the same.
    everything = await seen(person, f"/fhir/Patient/{person.at_b}/$everything")
    assert everything == {f"Patient/{person.at_b}", f"Observation/{person.observation_b}"}
    counted = await person.clinician.get(
        "/fhir/Observation", params={"patient": f"Patient/{person.at_a}", "_summary": "count"}
    )
    assert counted.json()["total"] == 0


async def test_a_permit_shows_every_record_by_every_path(person: Person) -> None:
    await give(person, type="permit")
    assert await every_path(person) == held_at_a(person)
    everything = await seen(person, f"/fhir/Patient/{person.at_b}/$everything")
    assert held_at_a(person) | {f"Patient/{person.at_b}"} <= everything


async def test_a_denied_class_is_neither_shown_nor_counted(person: Person) -> None:
    await give(
        person,
        type="permit",
        provision=[
            {
                "type": "deny",
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
            }
        ],
    )
    assert await every_path(person) == {f"Patient/{person.at_a}", f"Condition/{person.condition_a}"}
    counted = await person.clinician.get(
        "/fhir/Observation", params={"patient": f"Patient/{person.at_a}", "_summary": "count"}
    )
    assert counted.json()["total"] == 0


async def test_a_denied_security_label_hides_only_what_carries_it(person: Person) -> None:
    await give(
        person,
        type="permit",
        provision=[{"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "PSY"}]}],
    )
    assert await every_path(person) == held_at_a(person) - {f"Observation/{person.psychiatric_a}"}


async def test_an_expired_consent_falls_back_to_the_default(person: Person) -> None:
    await give(person, type="permit", period={"start": "2020-01-01", "end": "2021-01-01"})
    assert await every_path(person) == set()


async def test_a_consent_for_another_purpose_does_not_apply(person: Person) -> None:
    await give(person, type="permit", purpose=[{"system": PURPOSE, "code": "ETREAT"}])
    assert await every_path(person) == set()


async def test_a_consent_naming_another_facility_does_not_apply(
    person: Person, facilities: tuple[str, str, dict[str, httpx.AsyncClient]]
) -> None:
    code_a, code_b, _ = facilities
    other = {
        "role": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                }
            ]
        },
        "reference": {"identifier": {"system": FACILITY_SYSTEM, "value": unique("CZ")}},
    }
    await give(person, type="permit", actor=[other])
    assert await every_path(person) == set()
    named = dict(other, reference={"identifier": {"system": FACILITY_SYSTEM, "value": code_b}})
    await give(person, type="permit", actor=[named])
    assert await every_path(person) == held_at_a(person)


async def test_a_deny_overrides_a_permit(person: Person) -> None:
    await give(person, type="permit")
    await give(person, type="deny")
    assert await every_path(person) == set()


async def test_a_consent_of_another_person_opens_nothing(person: Person) -> None:
    stranger = await _create(person.a, patient())
    await _create(person.a, consent(stranger, type="permit"))
    assert await every_path(person) == set()


async def test_a_patient_sees_their_own_records_everywhere_and_nobody_else(
    app: Any, person: Person
) -> None:
    stranger = await _create(person.a, patient())
    async with client_for(app, "patient", patient=person.cccd) as citizen:
        mine = {f"Patient/{person.at_a}", f"Patient/{person.at_b}"}
        listed = await citizen.get("/fhir/Patient")
        assert listed.status_code == 200, listed.text
        assert {f"Patient/{e['resource']['id']}" for e in listed.json()["entry"]} == mine
        assert (await citizen.get(f"/fhir/Patient/{stranger}")).status_code == 404
        everything = await citizen.get(f"/fhir/Patient/{person.at_b}/$everything")
        found = {
            f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in everything.json()["entry"]
        }
        assert held_at_a(person) | mine | {f"Observation/{person.observation_b}"} <= found
        observations = await citizen.get("/fhir/Observation", params={"_summary": "count"})
        assert observations.json()["total"] == 3


async def test_breaking_the_glass_reveals_all_but_an_emergency_deny(
    app: Any, person: Person
) -> None:
    psychiatric = {
        "type": "deny",
        "purpose": [{"system": PURPOSE, "code": "ETREAT"}],
        "securityLabel": [{"system": ACT_CODE, "code": "PSY"}],
    }
    await give(person, type="deny", provision=[psychiatric])
    assert await every_path(person) == set()
    declared = await person.clinician.post(
        "/auth/break-glass",
        data={"reason": "Unconscious on arrival, no history available", "patient": person.at_b},
    )
    assert declared.status_code == 200, declared.text
    ordinary = person.clinician
    async with hub_client(app) as person.clinician:
        person.clinician.headers["authorization"] = f"Bearer {declared.json()['access_token']}"
        revealed = await every_path(person)
    person.clinician = ordinary
    assert revealed == held_at_a(person) - {f"Observation/{person.psychiatric_a}"}
    # The emergency was the clinician's, for its token's life: their ordinary token is unchanged.
    assert await every_path(person) == set()


@pytest.fixture(scope="module")
async def opt_out_app(app: Any) -> AsyncIterator[Any]:
    """A second hub on the same database whose deployment default is permit (opt-out)."""
    # Consents are written through the first hub: this one must not remember the persons.
    async with another_hub(app, consent_default="permit", consent_cache_seconds=0) as second:
        yield second


async def test_an_opt_out_deployment_shows_what_no_consent_denies(
    opt_out_app: Any, person: Person, facilities: tuple[str, str, dict[str, httpx.AsyncClient]]
) -> None:
    _, code_b, _ = facilities
    ordinary = person.clinician
    async with client_for(opt_out_app, "clinician", facility=code_b) as person.clinician:
        assert await every_path(person) == held_at_a(person)
        await give(
            person,
            type="permit",
            provision=[{"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "PSY"}]}],
        )
        assert await every_path(person) == held_at_a(person) - {
            f"Observation/{person.psychiatric_a}"
        }
    person.clinician = ordinary
    # The same person, read through the opt-in hub: only what the consent permits.
    assert await every_path(person) == held_at_a(person) - {f"Observation/{person.psychiatric_a}"}


async def test_a_change_of_consent_applies_to_the_next_request(person: Person) -> None:
    assert await every_path(person) == set()  # remembered: no consent
    await give(person, type="permit")
    assert await every_path(person) == held_at_a(person)


@pytest.fixture(scope="module")
async def other_process(app: Any) -> AsyncIterator[Any]:
    """A second hub on the same database, remembering persons for half a second."""
    async with another_hub(app, consent_cache_seconds=0.5) as second:
        yield second


async def test_another_processs_change_applies_within_the_cache_time(
    other_process: Any, person: Person, facilities: tuple[str, str, dict[str, httpx.AsyncClient]]
) -> None:
    _, code_b, _ = facilities
    ordinary = person.clinician
    async with client_for(other_process, "clinician", facility=code_b) as person.clinician:
        assert await every_path(person) == set()
        await give(person, type="permit")  # through the first hub
        await asyncio.sleep(0.6)
        assert await every_path(person) == held_at_a(person)
    person.clinician = ordinary
