"""A person's rights over their data (Vietnam's Personal Data Protection Law of 2025): they read
their records at every facility, manage their consents, and take their whole record as FHIR.

Real HTTP against the real app; the person logs in with the patient role, bound to their
citizen ID.
"""

from typing import Any

import pytest
from consent_access.records import citizen_id, consent, create, found
from support import client_for, observation, patient, returned, unique


@pytest.fixture(scope="module")
async def codes() -> tuple[str, str]:
    return unique("RA"), unique("RB")


async def test_a_person_takes_their_whole_record_from_every_facility(
    app: Any, codes: tuple[str, str]
) -> None:
    person, stranger = citizen_id(), citizen_id()
    async with (
        client_for(app, "facility", facility=codes[0]) as a,
        client_for(app, "facility", facility=codes[1]) as b,
        client_for(app, "patient", patient=person) as citizen,
    ):
        at_a, at_b = await create(a, patient(person)), await create(b, patient(person))
        theirs = await create(a, patient(stranger))
        mine = {
            f"Patient/{at_a}",
            f"Patient/{at_b}",
            f"Observation/{await create(a, observation(f'Patient/{at_a}'))}",
            f"Observation/{await create(b, observation(f'Patient/{at_b}'))}",
        }
        other = f"Observation/{await create(a, observation(f'Patient/{theirs}'))}"
        given = f"Consent/{await create(citizen, consent(at_a, type='permit'))}"
        response = await citizen.get("/fhir/Patient/$everything")
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["type"] == "searchset"
        record = returned(bundle)
        assert mine | {given} <= record
        assert other not in record and f"Patient/{theirs}" not in record
        assert not [link for link in bundle["link"] if link["relation"] == "next"]
        # The same through each Patient record of theirs, and their consents listed.
        assert mine <= await found(citizen, f"/fhir/Patient/{at_b}/$everything")
        assert await found(citizen, "/fhir/Consent") == {given}


async def test_only_a_person_takes_their_own_record_without_naming_it(
    app: Any, codes: tuple[str, str]
) -> None:
    async with client_for(app, "clinician", facility=codes[0]) as clinician:
        response = await clinician.get("/fhir/Patient/$everything")
        assert response.status_code == 400, response.text
        assert "Patient/{id}/$everything" in response.text
    async with client_for(app, "patient", patient=citizen_id()) as nobody:
        response = await nobody.get("/fhir/Patient/$everything")
        assert response.status_code == 404, response.text
