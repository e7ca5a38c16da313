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
from consent_access.records import consent
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


async def give(person: Person, **provision: Any) -> None:
    """Store a Consent for the person's record at A, written by A."""
    await _create(person.a, consent(person.at_a, **provision))


async def seen(person: Person, url: str, **params: str) -> set[str]:
    """Return the "Type/id" of every entry the clinician gets from a search, checking that
    the total counts exactly those (nothing when the search's patient is out of sight)."""
    response = await person.clinician.get(url, params=params)
    if response.status_code == 404:  # what the path names is out of sight
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


async def _read(person: Person, reference: str) -> set[str]:
    response = await person.clinician.get(f"/fhir/{reference}")
    assert response.status_code in (200, 404), response.text
    return returned(response.json()) if response.status_code == 200 else set()


async def _batch(person: Person, references: list[str]) -> set[str]:
    entries = [{"request": {"method": "GET", "url": r}} for r in references]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
    response = await person.clinician.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return {r for r, e in zip(references, response.json()["entry"], strict=True) if "resource" in e}


def paths(person: Person) -> list[tuple[str, Any, set[str]]]:
    """Return each read path of the clinician: its name, how to read it, and which records
    held at A it can reach at all (its domain; or what it shows of what is visible)."""
    national = f"{CCCD}|{person.cccd}"
    patient_a = f"Patient/{person.at_a}"
    observations = {f"Observation/{person.observation_a}", f"Observation/{person.psychiatric_a}"}
    condition = f"Condition/{person.condition_a}"
    singles = [patient_a, *sorted(observations), condition]
    found: list[tuple[str, Any, set[str]]] = []
    for reference in singles:
        found.append((f"read {reference}", _read(person, reference), {reference}))
        found.append((f"vread {reference}", _read(person, f"{reference}/_history/1"), {reference}))
        history = seen(person, f"/fhir/{reference}/_history")
        found.append((f"history {reference}", history, {reference}))
    found += [
        ("batch reads", _batch(person, singles), set(singles)),
        ("Patient?identifier", seen(person, "/fhir/Patient", identifier=national), {patient_a}),
        (
            "Patient?identifier&_revinclude",
            seen(person, "/fhir/Patient", identifier=national, _revinclude="Observation:subject"),
            # The observations are included only when their patient is a match.
            lambda visible: (
                visible & ({patient_a} | observations) if patient_a in visible else set()
            ),
        ),
        (
            "Observation?subject.identifier",
            seen(person, "/fhir/Observation", **{"subject.identifier": national}),
            observations,
        ),
        ("Observation?patient", seen(person, "/fhir/Observation", patient=patient_a), observations),
        (
            "Observation?patient&_include",
            seen(person, "/fhir/Observation", patient=patient_a, _include="Observation:subject"),
            # The patient is included only when an observation of theirs is a match.
            lambda visible: (
                visible & (observations | ({patient_a} if visible & observations else set()))
            ),
        ),
        (
            "Observation?patient=two persons",
            seen(person, "/fhir/Observation", patient=f"{patient_a},Patient/{person.at_b}"),
            observations,
        ),
        ("Condition?patient", seen(person, "/fhir/Condition", patient=patient_a), {condition}),
        (
            "Observation/_history?patient",
            seen(person, "/fhir/Observation/_history", patient=patient_a),
            observations,
        ),
        ("$everything", seen(person, f"/fhir/Patient/{person.at_b}/$everything"), set(singles)),
        ("compartment", seen(person, f"/fhir/{patient_a}/Observation"), observations),
    ]
    return found


async def each_path_shows(person: Person, visible: set[str]) -> None:
    """Check that each read path, on its own, shows exactly what is visible of the records
    held at A that it can reach: no more, no less."""
    wrong = []
    for name, reading, domain in paths(person):
        got = await reading & held_at_a(person)
        expected = domain(visible) if callable(domain) else visible & domain
        if got != expected:
            wrong.append(f"{name}: got {sorted(got)}, expected {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


async def test_without_consent_nothing_held_elsewhere_is_seen(person: Person) -> None:
    await each_path_shows(person, set())
    # Its own facility's records are there all the same.
    everything = await seen(person, f"/fhir/Patient/{person.at_b}/$everything")
    assert everything == {f"Patient/{person.at_b}", f"Observation/{person.observation_b}"}
    counted = await person.clinician.get(
        "/fhir/Observation", params={"patient": f"Patient/{person.at_a}", "_summary": "count"}
    )
    assert counted.json()["total"] == 0


async def test_a_permit_shows_every_record_by_every_path(person: Person) -> None:
    await give(person, type="permit")
    await each_path_shows(person, held_at_a(person))
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
    await each_path_shows(person, {f"Patient/{person.at_a}", f"Condition/{person.condition_a}"})
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
    await each_path_shows(person, held_at_a(person) - {f"Observation/{person.psychiatric_a}"})


async def test_an_expired_consent_falls_back_to_the_default(person: Person) -> None:
    await give(person, type="permit", period={"start": "2020-01-01", "end": "2021-01-01"})
    await each_path_shows(person, set())


async def test_a_consent_for_another_purpose_does_not_apply(person: Person) -> None:
    await give(person, type="permit", purpose=[{"system": PURPOSE, "code": "ETREAT"}])
    await each_path_shows(person, set())


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
    await each_path_shows(person, set())
    named = dict(other, reference={"identifier": {"system": FACILITY_SYSTEM, "value": code_b}})
    await give(person, type="permit", actor=[named])
    await each_path_shows(person, held_at_a(person))


async def test_a_deny_overrides_a_permit(person: Person) -> None:
    await give(person, type="permit")
    await give(person, type="deny")
    await each_path_shows(person, set())


async def test_a_consent_of_another_person_opens_nothing(person: Person) -> None:
    stranger = await _create(person.a, patient())
    await _create(person.a, consent(stranger, type="permit"))
    await each_path_shows(person, set())


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
    await each_path_shows(person, set())
    declared = await person.clinician.post(
        "/auth/break-glass",
        data={"reason": "Unconscious on arrival, no history available", "patient": person.at_b},
    )
    assert declared.status_code == 200, declared.text
    ordinary = person.clinician
    async with hub_client(app) as person.clinician:
        person.clinician.headers["authorization"] = f"Bearer {declared.json()['access_token']}"
        await each_path_shows(person, held_at_a(person) - {f"Observation/{person.psychiatric_a}"})
    person.clinician = ordinary
    # The emergency was the clinician's, for its token's life: their ordinary token is unchanged.
    await each_path_shows(person, set())


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
        await each_path_shows(person, held_at_a(person))
        await give(
            person,
            type="permit",
            provision=[{"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "PSY"}]}],
        )
        await each_path_shows(person, held_at_a(person) - {f"Observation/{person.psychiatric_a}"})
    person.clinician = ordinary
    # The same person, read through the opt-in hub: only what the consent permits.
    await each_path_shows(person, held_at_a(person) - {f"Observation/{person.psychiatric_a}"})


async def test_a_change_of_consent_applies_to_the_next_request(person: Person) -> None:
    await each_path_shows(person, set())  # remembered: no consent
    await give(person, type="permit")
    await each_path_shows(person, held_at_a(person))


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
        await each_path_shows(person, set())
        await give(person, type="permit")  # through the first hub
        await asyncio.sleep(0.6)
        await each_path_shows(person, held_at_a(person))
    person.clinician = ordinary
