"""The reporting counters, kept current by every accepted and refused submission: per
facility and per day, records by type, patients, people by national ID, delays."""

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from hub.reporting.counters import Counters
from hub.reporting.coverage import figures
from tests.reporting.test_reports import hub_at
from tests.support import FHIR_JSON, another_hub, client_for, patient, unique

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
# Drawn without replacement from a seeded generator: the same IDs every run, none twice (a
# person counted twice would be counted once).
CITIZEN_IDS = iter(random.Random(130_577).sample(range(10**5), 1000))


def citizen_id() -> str:
    return f"0790850{next(CITIZEN_IDS):05d}"


async def stats(app: Any, key: str) -> dict[str, Any]:
    doc = await app.state.mongo.stats.find_one({"_id": key})
    return dict(doc or {})


def visit(cccd: str, ended: datetime) -> dict[str, Any]:
    """Return a transaction: a Patient, an Encounter that ended at an instant, and an
    Observation of it."""
    person, encounter = f"urn:uuid:{unique()}", f"urn:uuid:{unique()}"
    resources = [
        (person, patient(cccd)),
        (
            encounter,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": person},
                "period": {
                    "start": (ended - timedelta(hours=1)).isoformat(),
                    "end": ended.isoformat(),
                },
            },
        ),
        (
            f"urn:uuid:{unique()}",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": person},
                "effectiveDateTime": ended.isoformat(),
            },
        ),
    ]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for url, r in resources
        ],
    }


async def test_an_accepted_transaction_adds_to_its_facility_and_its_day(app: Any) -> None:
    code = unique("C")
    at = datetime(2026, 2, 2, 20, 30, tzinfo=UTC)
    async with hub_at(app, at) as hub, client_for(hub, "facility", facility=code) as client:
        two_hours_before = visit(citizen_id(), at - timedelta(hours=2))
        response = await client.post("/fhir", json=two_hours_before, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
    total = await stats(app, f"f|{code}")
    assert total["accepted"] == 1 and total.get("refused", 0) == 0
    assert total["records"] == {"Patient": 1, "Encounter": 1, "Observation": 1}
    assert (total["patients"], total["people"]) == (1, 1)
    assert total["delays"] == 2 and total["timely"] == 2
    # Two records two hours late; an event time in seconds is read as the end of its second.
    assert total["delay_seconds"] == pytest.approx(2 * 2 * 3600, abs=2)
    assert total["first"] == total["last"] == at
    # 20:30 UTC on 2 February is 03:30 on 3 February in UTC+7.
    daily = await stats(app, f"d|{code}|2026-02-03")
    assert {k: daily[k] for k in ("accepted", "records", "patients", "people")} == {
        k: total[k] for k in ("accepted", "records", "patients", "people")
    }


async def test_a_person_counts_once_across_facilities_and_a_late_record_is_not_timely(
    app: Any, facility_client: Any
) -> None:
    cccd = citizen_id()
    first, second = unique("C"), unique("C")
    # Read afresh: a second hub of the session counted people this process has not read.
    app.state.counters.forget()
    people_before = await app.state.counters.people()
    for code, hours in ((first, 1), (second, 72)):
        client = await facility_client(code)
        ended = app.state.clock.now() - timedelta(hours=hours)
        assert (await client.post("/fhir", json=visit(cccd, ended))).status_code == 200
    assert await app.state.counters.people() == people_before + 1
    assert (await stats(app, f"f|{first}"))["people"] == 1
    later = await stats(app, f"f|{second}")
    assert later.get("people", 0) == 0 and later["patients"] == 1
    assert later["delays"] == 2 and later.get("timely", 0) == 0


async def test_updates_deletes_and_refusals_count_as_they_should(
    app: Any, facility_client: Any
) -> None:
    code = unique("C")
    client = await facility_client(code)
    created = await client.post("/fhir/Patient", json=patient(citizen_id()))
    assert created.status_code == 201
    body = created.json()
    assert (await client.put(f"/fhir/Patient/{body['id']}", json=body)).status_code == 200
    assert (await client.delete(f"/fhir/Patient/{body['id']}")).status_code == 204
    refused = await client.post("/fhir/Patient", json=patient(citizen_id(), gender="robot"))
    assert refused.status_code == 400
    total = await stats(app, f"f|{code}")
    assert (total["accepted"], total["refused"]) == (3, 1)
    assert total["records"] == {"Patient": 0} and total["patients"] == 0
    assert total["first"] < total["last"]


async def test_records_read_by_another_facility_count_as_exchanged(app: Any) -> None:
    """A clinician at B reading a person's records held at A: in to B, out from A; A reading
    its own records exchanges nothing."""
    holder, reader = unique("C"), unique("C")
    async with another_hub(app, consent_default="permit") as hub:
        async with client_for(hub, "facility", facility=holder) as own:
            ended = hub.state.clock.now() - timedelta(hours=1)
            answer = await own.post("/fhir", json=visit(citizen_id(), ended), headers=FHIR_JSON)
            assert answer.status_code == 200, answer.text
            person = answer.json()["entry"][0]["response"]["location"].split("/_history")[0]
            assert (await own.get(f"/fhir/{person}/$everything")).status_code == 200
        assert "exchanged_out" not in await stats(app, f"f|{holder}")
        async with client_for(hub, "clinician", facility=reader) as clinician:
            everything = await clinician.get(f"/fhir/{person}/$everything")
            assert everything.status_code == 200, everything.text
            seen = len(everything.json()["entry"])
            assert seen == 3
            assert (await clinician.get(f"/fhir/{person}")).status_code == 200
    assert (await stats(app, f"f|{holder}"))["exchanged_out"] == seen + 1
    assert (await stats(app, f"f|{reader}"))["exchanged_in"] == seen + 1


async def test_a_past_day_is_summed_once_kept_and_the_next_day_adds_to_it(app: Any) -> None:
    """The figures at the end of a past day: summed from the day counters the first time,
    then read from what was kept; a later day starts from the last day kept."""
    code = unique("C")
    counters = app.state.counters
    days = {"2019-03-01": 2, "2019-03-02": 3, "2019-03-04": 5}
    await app.state.mongo.stats.insert_many(
        [
            {
                "_id": f"d|{code}|{day}",
                "kind": "day",
                "facility": code,
                "day": day,
                "accepted": n,
                "records": {"Patient": n},
            }
            for day, n in days.items()
        ]
    )
    first = await figures(counters, date(2019, 3, 2))
    assert (first[code].accepted, first[code].records) == (5, {"Patient": 5})
    assert first[code].last is not None and first[code].last.date() == date(2019, 3, 2)
    # Kept: a day counter changed afterwards (it cannot be, once the day is over) is not read.
    await app.state.mongo.stats.update_one(
        {"_id": f"d|{code}|2019-03-02"}, {"$inc": {"accepted": 100}}
    )
    assert (await figures(counters, date(2019, 3, 2)))[code].accepted == 5
    later = await figures(counters, date(2019, 3, 5))
    assert later[code].accepted == 10 and later[code].first == first[code].first


async def test_another_process_counts_are_read_again_in_the_background(app: Any) -> None:
    """Remembered totals answer at once; once older than the cache time they are read again
    while they still answer, and the next report sees what another process counted."""
    settings = app.state.settings
    counters = Counters(app.state.mongo, app.state.clock, settings.national_id_system, 0.0)
    await counters.facilities()
    code = unique("C")
    counted = {"_id": f"f|{code}", "kind": "facility", "facility": code, "accepted": 1}
    await app.state.mongo.stats.insert_one(counted)
    assert code not in {d["facility"] for d in await counters.facilities()}
    for _ in range(500):
        if code in {d["facility"] for d in await counters.facilities()}:
            break
        await asyncio.sleep(0.01)
    assert code in {d["facility"] for d in await counters.facilities()}
