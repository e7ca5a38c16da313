"""The leaks an attack run found, each reproduced as it was found, and the consent model that
closes them: deny wins when a record concerns two persons; a facility's consent governs only
its own records; history hides what read hides; an unreadable consent hides everything held
elsewhere; a citizen ID names a person only under its system; break the glass is bound to the
declared person; a consent's dates are the country's days.

Facilities A and B hold records; the clinician works at C unless said otherwise. Real HTTP
against the real app on the real database.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from consent_access.records import (
    CCCD,
    FACILITY_SYSTEM,
    PSY,
    PURPOSE,
    actor,
    citizen_id,
    consent,
    create,
    found,
    readable,
    update,
)
from support import FHIR_JSON, another_hub, client_for, hub_client, observation, patient, unique


@dataclass
class Hub:
    """Facilities A, B and C: their systems, a clinician at C, and the admin."""

    codes: dict[str, str]
    system: dict[str, httpx.AsyncClient]
    clinician: httpx.AsyncClient


@pytest.fixture(scope="module")
async def hub(app: Any) -> AsyncIterator[Hub]:
    codes = {name: unique(f"L{name}") for name in "ABC"}
    async with (
        client_for(app, "facility", facility=codes["A"]) as a,
        client_for(app, "facility", facility=codes["B"]) as b,
        client_for(app, "facility", facility=codes["C"]) as c,
        client_for(app, "clinician", facility=codes["C"]) as clinician,
    ):
        yield Hub(codes, {"A": a, "B": b, "C": c}, clinician)


async def _withdraw(client: httpx.AsyncClient, consent_id: str) -> None:
    current = (await client.get(f"/fhir/Consent/{consent_id}")).json()
    await update(client, current | {"status": "inactive"})


async def test_a_record_of_two_persons_shows_only_where_both_allow(app: Any, hub: Hub) -> None:
    a = hub.system["A"]
    y, z = citizen_id(), citizen_id()
    at_y, at_z = await create(a, patient(y)), await create(a, patient(z))
    both = await create(
        a, observation(f"Patient/{at_y}", performer=[{"reference": f"Patient/{at_z}"}])
    )
    denial = await create(a, consent(at_y, type="deny"))  # Y refuses every facility
    await create(a, consent(at_z, type="permit"))  # Z lets every facility see
    record = f"Observation/{both}"
    clinician = hub.clinician
    assert not await readable(clinician, record)
    assert record not in await found(clinician, f"/fhir/Patient/{at_z}/$everything")
    assert record not in await found(clinician, f"/fhir/Patient/{at_z}/Observation")
    assert record not in await found(clinician, "/fhir/Observation", performer=f"Patient/{at_z}")
    assert record not in await found(clinician, "/fhir/Observation/_history", patient=at_z)
    async with client_for(app, "patient", patient=z) as citizen:
        assert not await readable(citizen, record)
        assert record not in await found(citizen, "/fhir/Observation")
        assert record not in await found(citizen, f"/fhir/Patient/{at_z}/$everything")
    # Once Y withdraws the refusal, both allow: the record shows through Z.
    await _withdraw(a, denial)
    await create(a, consent(at_y, type="permit"))
    assert await readable(clinician, record)
    assert record in await found(clinician, f"/fhir/Patient/{at_z}/$everything")
    assert record in await found(clinician, "/fhir/Observation", performer=f"Patient/{at_z}")


async def test_a_facility_cannot_open_the_records_another_facility_holds(hub: Hub) -> None:
    a, b = hub.system["A"], hub.system["B"]
    person = citizen_id()
    at_b = await create(b, patient(person))
    record = f"Observation/{await create(b, observation(f'Patient/{at_b}'))}"
    # A claims the person (their citizen ID on a Patient of its own) and consents for them.
    claimed = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f6c1c1e-0000-4000-8000-000000000001",
                "resource": patient(person),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": consent("x", type="permit")
                | {"patient": {"reference": "urn:uuid:0f6c1c1e-0000-4000-8000-000000000001"}},
                "request": {"method": "POST", "url": "Consent"},
            },
        ],
    }
    response = await a.post("/fhir", json=claimed, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    at_a = response.json()["entry"][0]["response"]["location"].split("/")[1]
    clinician = hub.clinician
    national = f"{CCCD}|{person}"
    assert not await readable(clinician, record)
    assert record not in await found(clinician, f"/fhir/Patient/{at_a}/$everything")
    assert record not in await found(clinician, f"/fhir/Patient/{at_b}/$everything")
    assert record not in await found(
        clinician, "/fhir/Observation", **{"subject.identifier": national}
    )
    # The reverse: B lets every facility see its records; A's refusal cannot take that back.
    await create(b, consent(at_b, type="permit"))
    assert await readable(clinician, record)
    await create(a, consent(at_a, type="deny"))
    assert await readable(clinician, record)
    assert record in await found(clinician, f"/fhir/Patient/{at_b}/$everything")
    assert not await readable(clinician, f"Patient/{at_a}")  # A's refusal hides A's own


async def test_type_history_hides_what_read_hides(hub: Hub) -> None:
    a = hub.system["A"]
    person, other = citizen_id(), citizen_id()
    at_a, elsewhere = await create(a, patient(person)), await create(a, patient(other))
    sensitive = {"type": "deny", "securityLabel": [PSY]}
    await create(a, consent(at_a, type="permit", provision=[sensitive]))
    subject = f"Patient/{at_a}"
    plain = await create(a, observation(subject))
    relabelled = await create(a, observation(subject))
    await update(a, observation(subject, id=relabelled, meta={"security": [PSY]}))
    moved = await create(a, observation(subject))
    await update(a, observation(f"Patient/{elsewhere}", id=moved))
    gone = await create(a, observation(subject))
    assert (await a.delete(f"/fhir/Observation/{gone}")).status_code == 204
    clinician = hub.clinician
    hidden = {f"Observation/{rid}" for rid in (relabelled, moved, gone)}
    for params in ({"patient": at_a}, {"patient": subject}, {"subject": subject}):
        history = await found(clinician, "/fhir/Observation/_history", **params)
        assert f"Observation/{plain}" in history
        assert not hidden & history, params
    for rid in (relabelled, moved, gone):
        assert not await readable(clinician, f"Observation/{rid}/_history/1")
        assert not await found(clinician, f"/fhir/Observation/{rid}/_history")
    # A label taken off shows the record now, but never the version that carried it.
    unlabelled = await create(a, observation(subject, meta={"security": [PSY]}))
    await update(a, observation(subject, id=unlabelled))
    assert await readable(clinician, f"Observation/{unlabelled}")
    assert await readable(clinician, f"Observation/{unlabelled}/_history/2")
    assert not await readable(clinician, f"Observation/{unlabelled}/_history/1")
    response = await clinician.get(f"/fhir/Observation/{unlabelled}/_history")
    assert [e["response"]["etag"] for e in response.json()["entry"]] == ['W/"2"']
    history = await clinician.get("/fhir/Observation/_history", params={"patient": at_a})
    versions = [
        e["response"]["etag"] for e in history.json()["entry"] if unlabelled in e["fullUrl"]
    ]
    assert versions == ['W/"2"']
    # The holder itself still sees every version of its records.
    own = await found(a, "/fhir/Observation/_history", _count="1000")
    assert hidden <= own


async def test_an_unreadable_consent_hides_everything_held_elsewhere(
    admin: httpx.AsyncClient, hub: Hub
) -> None:
    a = hub.system["A"]
    code = unique("LX")
    organization = {
        "resourceType": "Organization",
        "identifier": [{"system": "https://moh.gov.vn/fhir/sid/facility", "value": code}],
        "name": "A facility closed since",
    }
    organization_id = await create(admin, organization)
    person = citizen_id()
    at_a = await create(a, patient(person))
    record = f"Observation/{await create(a, observation(f'Patient/{at_a}'))}"
    refused = {
        "type": "deny",
        "actor": [actor(code) | {"reference": {"reference": f"Organization/{organization_id}"}}],
    }
    await create(a, consent(at_a, type="permit", provision=[refused]))
    assert await readable(hub.clinician, record)
    assert (await admin.delete(f"/fhir/Organization/{organization_id}")).status_code == 204
    # The deny names a facility the hub can no longer tell: it could be anyone's.
    assert not await readable(hub.clinician, record)
    assert record not in await found(hub.clinician, f"/fhir/Patient/{at_a}/$everything")


async def test_one_persons_consent_opens_only_their_own_records(hub: Hub) -> None:
    a = hub.system["A"]
    first, second = await create(a, patient()), await create(a, patient())
    await create(a, consent(first, type="permit"))
    mine = f"Observation/{await create(a, observation(f'Patient/{first}'))}"
    theirs = f"Observation/{await create(a, observation(f'Patient/{second}'))}"
    both = f"Patient/{first},Patient/{second}"
    shown = await found(hub.clinician, "/fhir/Observation", patient=both)
    assert mine in shown and theirs not in shown
    counted = await hub.clinician.get(
        "/fhir/Observation", params={"patient": both, "_summary": "count"}
    )
    assert counted.json()["total"] == 1


async def test_a_citizen_id_names_a_person_only_under_the_national_system(hub: Hub) -> None:
    a = hub.system["A"]
    person = citizen_id()
    at_a = await create(a, patient(person))
    await create(a, consent(at_a, type="permit"))
    record = f"Observation/{await create(a, observation(f'Patient/{at_a}'))}"
    url = "/fhir/Observation/_history"
    named = await found(hub.clinician, url, **{"patient.identifier": f"{CCCD}|{person}"})
    assert record in named
    for value in (f"http://hospital.example.vn/mrn|{person}", person, f"|{person}"):
        assert record not in await found(hub.clinician, url, **{"patient.identifier": value})
        patients = await found(hub.clinician, "/fhir/Patient", identifier=value)
        assert f"Patient/{at_a}" not in patients


async def test_a_persons_own_consent_opens_every_facility_and_a_facilitys_its_own(
    app: Any, hub: Hub
) -> None:
    a, b = hub.system["A"], hub.system["B"]
    person = citizen_id()
    at_a, at_b = await create(a, patient(person)), await create(b, patient(person))
    held_a = f"Observation/{await create(a, observation(f'Patient/{at_a}'))}"
    held_b = f"Observation/{await create(b, observation(f'Patient/{at_b}'))}"
    everything = f"/fhir/Patient/{at_a}/$everything"
    assert not {held_a, held_b} & await found(hub.clinician, everything)
    async with client_for(app, "patient", patient=person) as citizen:
        own = await create(citizen, consent(at_b, type="permit"))
        assert f"Consent/{own}" in await found(citizen, "/fhir/Consent")
    assert {held_a, held_b} <= await found(hub.clinician, everything)
    # A facility's refusal governs only what it holds.
    await create(a, consent(at_a, type="deny"))
    shown = await found(hub.clinician, f"/fhir/Patient/{at_b}/$everything")
    assert held_b in shown and held_a not in shown and f"Patient/{at_a}" not in shown


async def test_a_facility_proposes_a_consent_and_the_person_confirms_it(app: Any, hub: Hub) -> None:
    a, b = hub.system["A"], hub.system["B"]
    person = citizen_id()
    at_a, at_b = await create(a, patient(person)), await create(b, patient(person))
    held_a = f"Observation/{await create(a, observation(f'Patient/{at_a}'))}"
    proposed = await create(b, consent(at_b, status="proposed", type="permit"))
    assert not await readable(hub.clinician, held_a)
    async with client_for(app, "patient", patient=person) as citizen:
        offered = (await citizen.get(f"/fhir/Consent/{proposed}")).json()
        await update(citizen, offered | {"status": "active"})
    assert await readable(hub.clinician, held_a)


async def test_a_person_writes_and_withdraws_only_their_own_consents(app: Any, hub: Hub) -> None:
    a = hub.system["A"]
    person, stranger = citizen_id(), citizen_id()
    at_a, theirs = await create(a, patient(person)), await create(a, patient(stranger))
    others = await create(a, consent(theirs, type="deny"))
    async with client_for(app, "patient", patient=person) as citizen:
        response = await citizen.post(
            "/fhir/Consent", json=consent(theirs, type="permit"), headers=FHIR_JSON
        )
        assert response.status_code == 422, response.text
        assert "Consent.patient.reference" in response.text
        taken = consent(at_a, type="permit") | {"id": others}
        response = await citizen.put(f"/fhir/Consent/{others}", json=taken, headers=FHIR_JSON)
        assert response.status_code == 403, response.text
        assert (await citizen.delete(f"/fhir/Consent/{others}")).status_code in (204, 404)
        assert (await a.get(f"/fhir/Consent/{others}")).status_code == 200
        response = await citizen.post(
            "/fhir/Observation", json=observation(f"Patient/{at_a}"), headers=FHIR_JSON
        )
        assert response.status_code == 403, response.text
        claiming = consent(at_a, type="permit") | {
            "meta": {"tag": [{"system": FACILITY_SYSTEM, "code": hub.codes["A"]}]}
        }
        response = await citizen.post("/fhir/Consent", json=claiming, headers=FHIR_JSON)
        assert response.status_code == 403, response.text
        assert "meta.tag[0]" in response.text and "a person writes as themselves" in response.text
        mine = await create(citizen, consent(at_a, type="permit"))
        assert (await citizen.delete(f"/fhir/Consent/{mine}")).status_code == 204
        assert f"Consent/{mine}" not in await found(citizen, "/fhir/Consent")


async def test_break_the_glass_reveals_only_the_declared_person(app: Any, hub: Hub) -> None:
    a = hub.system["A"]
    declared, other = await create(a, patient()), await create(a, patient())
    for rid in (declared, other):
        await create(a, consent(rid, type="deny"))
    for_declared = f"Observation/{await create(a, observation(f'Patient/{declared}'))}"
    for_other = f"Observation/{await create(a, observation(f'Patient/{other}'))}"
    async with client_for(app, "clinician", facility=hub.codes["B"]) as clinician:
        response = await clinician.post(
            "/auth/break-glass",
            data={"reason": "Unconscious on arrival, no history", "patient": declared},
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
    async with hub_client(app) as emergency:
        emergency.headers["authorization"] = f"Bearer {token}"
        assert await readable(emergency, for_declared)
        assert not await readable(emergency, for_other)
        both = f"Patient/{declared},Patient/{other}"
        shown = await found(emergency, "/fhir/Observation", patient=both)
        assert for_declared in shown and for_other not in shown


async def test_a_consents_dates_are_the_countrys_days(app: Any, hub: Hub) -> None:
    a = hub.system["A"]
    at_a = await create(a, patient())
    record = f"Observation/{await create(a, observation(f'Patient/{at_a}'))}"
    # In force until the end of 8 December in Vietnam: 17:00 UTC.
    permit = {"type": "permit", "period": {"start": "2026-12-01", "end": "2026-12-08"}}
    await create(a, consent(at_a, **permit))
    async with another_hub(app, consent_cache_seconds=0) as second:
        async with client_for(second, "clinician", facility=hub.codes["C"]) as clinician:
            second.state.clock.set(datetime(2026, 12, 8, 16, 59, 59, tzinfo=UTC))
            assert await readable(clinician, record)
            second.state.clock.set(datetime(2026, 12, 8, 17, 0, 0, tzinfo=UTC))
            assert not await readable(clinician, record)
            second.state.clock.set(datetime(2026, 11, 30, 17, 0, 0, tzinfo=UTC))
            assert await readable(clinician, record)
            second.state.clock.set(datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC))
            assert not await readable(clinician, record)


async def test_an_emergency_deny_stands_for_the_declared_person(app: Any, hub: Hub) -> None:
    a = hub.system["A"]
    declared = await create(a, patient())
    standing = {"type": "deny", "purpose": [{"system": PURPOSE, "code": "ETREAT"}]}
    await create(a, consent(declared, **standing))
    record = f"Observation/{await create(a, observation(f'Patient/{declared}'))}"
    async with client_for(app, "clinician", facility=hub.codes["B"]) as clinician:
        response = await clinician.post(
            "/auth/break-glass",
            data={"reason": "Unconscious on arrival, no history", "patient": declared},
        )
        token = response.json()["access_token"]
    async with hub_client(app) as emergency:
        emergency.headers["authorization"] = f"Bearer {token}"
        assert not await readable(emergency, record)
