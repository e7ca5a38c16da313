"""What a patient reads of the audit trail: each event cut down to them. An event of a request
that named several patients comes back to each with only their own Patient references and the
resources of their own records; the others', and the query string that named them, are gone.
Each read path (search, read, history, POST _search) is checked on its own; auditors see whole."""

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from audit.helpers import Who, caller, entities, events_of
from auth.helpers import bearer, declare
from support import FHIR_JSON, client_for, observation, patient, unique

from hub.audit.view import event_for

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
RESOURCE = "4"
PATIENT = "1"
QUERY = "24"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
REASON = "Unconscious patient in the emergency room, no relatives reachable"


@dataclass
class Person:
    """A patient with a record at a facility: citizen ID, Patient id and Observation ids."""

    citizen: str
    pid: str
    observations: list[str]

    @property
    def reference(self) -> str:
        """Return the reference of the person's Patient."""
        return f"Patient/{self.pid}"

    def traces(self) -> list[str]:
        """Return every value of the person's that an event about them may hold."""
        return [self.citizen, self.pid, *self.observations]


async def person(client: httpx.AsyncClient, facility: Who) -> Person:
    """Register a Patient with one Observation at a facility."""
    citizen = unique("0")
    r = await client.post("/fhir/Patient", json=patient(citizen), headers=facility.headers)
    pid = r.json()["id"]
    r = await client.post(
        "/fhir/Observation", json=observation(f"Patient/{pid}"), headers=facility.headers
    )
    return Person(citizen, pid, [r.json()["id"]])


async def last_event(app: Any, who: Who) -> dict[str, Any]:
    """Return the stored event of the last request of `who`."""
    return (await events_of(app, who.client_id))[-1]


async def by_search(c: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    r = await c.get(f"/fhir/AuditEvent?_id={event_id}")
    assert r.status_code == 200, r.text
    [entry] = r.json()["entry"]
    return dict(entry["resource"])


async def by_read(c: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    r = await c.get(f"/fhir/AuditEvent/{event_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def by_history(c: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    r = await c.get("/fhir/AuditEvent/_history?_count=100")
    assert r.status_code == 200, r.text
    [event] = [e["resource"] for e in r.json()["entry"] if e["resource"]["id"] == event_id]
    return dict(event)


async def by_post_search(c: httpx.AsyncClient, event_id: str) -> dict[str, Any]:
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = await c.post("/fhir/AuditEvent/_search", content=f"_id={event_id}", headers=form)
    assert r.status_code == 200, r.text
    [entry] = r.json()["entry"]
    return dict(entry["resource"])


READ_PATHS: dict[str, Callable[[httpx.AsyncClient, str], Awaitable[dict[str, Any]]]] = {
    "search": by_search,
    "read": by_read,
    "history": by_history,
    "post-search": by_post_search,
}


def assert_only_own(view: dict[str, Any], own: Person, other: Person) -> None:
    """Check that an event as a patient reads it names them and holds nothing of another."""
    text = json.dumps(view)
    for trace in other.traces():
        assert trace not in text, (trace, view)
    assert not [e for e in view.get("entity", []) if "query" in e], view
    assert own.reference in entities(view, PATIENT)
    assert other.reference not in entities(view)


async def multi_patient_events(
    app: Any, client: httpx.AsyncClient
) -> tuple[Person, Person, list[dict[str, Any]]]:
    """Have a facility and a clinician make requests that each name two patients; return the
    two patients and the stored events."""
    code = unique("F")
    facility = await caller(app, client, "facility", facility=code)
    a, b = await person(client, facility), await person(client, facility)
    clinician = await caller(app, client, "clinician", facility=code)
    events = []

    r = await client.get(
        f"/fhir/Patient?identifier={CCCD}|{a.citizen},{CCCD}|{b.citizen}",
        headers=clinician.headers,
    )
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {a.pid, b.pid}, r.text
    events.append(await last_event(app, clinician))

    r = await client.get(f"/fhir/Observation?patient={a.pid},{b.pid}", headers=clinician.headers)
    assert len(r.json()["entry"]) == 2, r.text
    events.append(await last_event(app, clinician))

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(p.reference),
                "request": {"method": "POST", "url": "Observation"},
            }
            for p in (a, b)
        ],
    }
    r = await client.post("/fhir", json=bundle, headers=facility.headers)
    assert r.status_code == 200, r.text
    a_obs, b_obs = (e["response"]["location"].split("/")[1] for e in r.json()["entry"])
    a.observations.append(a_obs)
    b.observations.append(b_obs)
    events.append(await last_event(app, facility))

    for event in events:  # the events as stored name both
        assert {a.reference, b.reference} <= entities(event, PATIENT)
    return a, b, events


@pytest.mark.parametrize("path", list(READ_PATHS))
async def test_a_patient_sees_only_themselves(
    app: Any, client: httpx.AsyncClient, path: str
) -> None:
    a, b, events = await multi_patient_events(app, client)
    read = READ_PATHS[path]
    for own, other in ((a, b), (b, a)):
        async with client_for(app, "patient", patient=own.citizen) as me:
            for event in events:
                view = await read(me, event["id"])
                assert_only_own(view, own, other)
                # Their own resources stay: what of their record was read or written.
                listed = entities(event, RESOURCE)
                mine = {r for r in listed if r.split("/")[1] in own.traces()}
                assert mine and entities(view, RESOURCE) == mine, (path, view)
                # The query is said, without its values.
                if any(e.get("role", {}).get("code") == QUERY for e in event["entity"]):
                    [said] = [e for e in view["entity"] if e.get("role", {}).get("code") == QUERY]
                    assert "description" in said and "query" not in said


async def test_auditors_see_events_whole(app: Any, client: httpx.AsyncClient) -> None:
    a, b, events = await multi_patient_events(app, client)
    auditor = await caller(app, client, "auditor")
    for event in events:
        r = await client.get(f"/fhir/AuditEvent/{event['id']}", headers=auditor.headers)
        whole = {k: v for k, v in event.items() if k not in ("_id", "_hub")}
        assert r.json() == whole
    [search] = [e for e in events[0]["entity"] if e.get("role", {}).get("code") == QUERY]
    assert b.citizen in base64.b64decode(search["query"]).decode()


async def test_a_record_shared_by_two_people(app: Any, client: httpx.AsyncClient) -> None:
    """A resource in two patients' compartments is each one's; the request's path, when it
    names the other, is not shown."""
    code = unique("F")
    facility = await caller(app, client, "facility", facility=code)
    a, b = await person(client, facility), await person(client, facility)
    shared = observation(b.reference, performer=[{"reference": a.reference}])
    r = await client.post("/fhir/Observation", json=shared, headers=facility.headers)
    assert r.status_code == 201, r.text
    shared_id = r.json()["id"]
    r = await client.get(f"/fhir/Patient/{b.pid}/$everything", headers=facility.headers)
    assert r.status_code == 200, r.text
    event = await last_event(app, facility)
    assert {a.reference, b.reference} <= entities(event, PATIENT)

    async with client_for(app, "patient", patient=a.citizen) as me:
        view = await by_read(me, event["id"])
    # The other's $everything returned the shared Observation, and the Patient it names.
    assert entities(view, RESOURCE) == {f"Observation/{shared_id}", a.reference}
    assert entities(view, PATIENT) == {a.reference}
    assert b.pid not in json.dumps(view)
    assert view["outcomeDesc"].startswith("HTTP 200 on GET /fhir/Patient/")
    async with client_for(app, "patient", patient=b.citizen) as me:
        view = await by_read(me, event["id"])
    assert f"Observation/{shared_id}" in entities(view, RESOURCE)
    assert a.pid not in json.dumps(view)
    assert view["outcomeDesc"] == event["outcomeDesc"]


async def test_a_patients_own_reads_are_cut_down_too(app: Any, client: httpx.AsyncClient) -> None:
    """Reading the trail leaves an event naming what was read: the patient's own read of an
    event about two people names only them."""
    a, b, events = await multi_patient_events(app, client)
    async with client_for(app, "patient", patient=a.citizen) as me:
        await by_read(me, events[0]["id"])
        r = await me.get("/fhir/AuditEvent?_count=1", headers=FHIR_JSON)
    [own_read] = [e["resource"] for e in r.json()["entry"]]
    assert own_read["subtype"][0]["code"] == "read"
    assert_only_own(own_read, a, b)


async def test_a_break_glass_reason_is_for_auditors(app: Any, client: httpx.AsyncClient) -> None:
    """The reason a clinician declared is free text that may name anyone: a patient reads that
    the glass was broken (BTG, ETREAT), not why. Here the emergency is the other's, and the
    search under its token met a record of the reader's own too."""
    code = unique("F")
    facility = await caller(app, client, "facility", facility=code)
    a, b = await person(client, facility), await person(client, facility)
    shared = observation(b.reference, performer=[{"reference": a.reference}])
    r = await client.post("/fhir/Observation", json=shared, headers=facility.headers)
    assert r.status_code == 201, r.text
    doctor = await caller(
        app, client, "clinician", facility=code, practitioner=f"Practitioner/{unique('p')}"
    )
    declared = await declare(
        client, doctor.token, reason=f"{REASON}: {b.citizen}", patient=b.reference
    )
    assert declared.status_code == 200, declared.text
    emergency = FHIR_JSON | bearer(declared.json()["access_token"])
    r = await client.get(f"/fhir/Observation?patient={a.pid},{b.pid}", headers=emergency)
    assert r.status_code == 200, r.text
    event = await last_event(app, doctor)
    assert {a.reference, b.reference} <= entities(event, PATIENT)
    assert b.citizen in event["agent"][0]["purposeOfUse"][0]["text"]

    async with client_for(app, "patient", patient=a.citizen) as me:
        view = await by_read(me, event["id"])
    assert_only_own(view, a, b)
    assert view["meta"]["security"][0]["code"] == "BTG"
    [purpose] = view["agent"][0]["purposeOfUse"]
    assert purpose == {"coding": [{"system": ACT_REASON, "code": "ETREAT"}]}


def test_what_a_stored_event_shows_a_patient() -> None:
    """The cut on stored documents: events written before compartments were kept show only the
    reader's own Patients; a reader indexed but over the listing limit is named anyway."""
    doc: dict[str, Any] = {
        "_id": "e1",
        "resourceType": "AuditEvent",
        "id": "e1",
        "outcomeDesc": "HTTP 200 on GET /fhir/Patient/b1/$everything",
        "entity": [
            {"what": {"reference": "Observation/o1"}, "role": {"code": RESOURCE}},
            {"what": {"reference": "Patient/b1"}, "role": {"code": PATIENT}},
        ],
        "_hub": {"patients": ["Patient/b1", "Patient/a1"]},
    }
    whole = event_for(doc, None)
    assert whole == {k: v for k, v in doc.items() if k not in ("_id", "_hub")}
    view = event_for(doc, {"Patient/a1"})
    assert entities(view) == {"Patient/a1"}
    assert view["outcomeDesc"] == "HTTP 200 on GET /fhir/Patient/(not shown)/$everything"
    assert "1 more resources, 1 more patients" in view["entity"][-1]["description"]
    assert doc["entity"][1]["what"]["reference"] == "Patient/b1"  # the stored one unchanged
