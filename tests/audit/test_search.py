"""GET /fhir/AuditEvent: by patient, agent and date, newest first, paged; auditors see all,
a patient only events about their own records, other callers with a token nothing."""

from datetime import date, timedelta
from typing import Any

import httpx
from audit.helpers import caller, entities
from support import FHIR_JSON, observation, patient, unique, winning_index

CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


async def test_search_by_patient_agent_and_date(app: Any, client: httpx.AsyncClient) -> None:
    auditor = await caller(app, client, "auditor")
    facility = await caller(app, client, "facility")
    citizen = unique("0")
    r = await client.post("/fhir/Patient", json=patient(citizen), headers=facility.headers)
    pid = r.json()["id"]
    obs = observation(f"Patient/{pid}")
    await client.post("/fhir/Observation", json=obs, headers=facility.headers)
    await client.get(f"/fhir/Patient/{pid}/$everything", headers=facility.headers)

    r = await client.get(f"/fhir/AuditEvent?patient=Patient/{pid}", headers=auditor.headers)
    assert r.status_code == 200, r.text
    found = r.json()["entry"]
    assert [e["resource"]["subtype"][0]["code"] for e in found] == ["operation", "create", "create"]
    assert all(f"Patient/{pid}" in entities(e["resource"], "1") for e in found)
    # The auditor's search returned events about the patient: it is about the patient too.
    by_id = await client.get(
        f"/fhir/AuditEvent?patient:identifier={CCCD}|{citizen}", headers=auditor.headers
    )
    assert ids(by_id.json())[1:] == ids(r.json())
    plain = await client.get(
        f"/fhir/AuditEvent?patient={pid}&agent={facility.client_id}", headers=auditor.headers
    )
    assert ids(plain.json()) == ids(r.json())

    r = await client.get(f"/fhir/AuditEvent?agent={facility.client_id}", headers=auditor.headers)
    assert len(r.json()["entry"]) == 3

    page = await client.get(
        f"/fhir/AuditEvent?agent={facility.client_id}&_count=2", headers=auditor.headers
    )
    assert len(page.json()["entry"]) == 2
    [after] = [x["url"] for x in page.json()["link"] if x["relation"] == "next"]
    rest = await client.get(after.removeprefix("http://hub.test"), headers=auditor.headers)
    assert ids(page.json()) + ids(rest.json()) == ids(r.json())
    assert not [x for x in rest.json()["link"] if x["relation"] == "next"]

    # The days the events were recorded on (UTC), not today's: a run may cross midnight.
    days = [date.fromisoformat(e["resource"]["recorded"][:10]) for e in r.json()["entry"]]
    first, last = min(days), max(days)
    for when, expected in [
        (f"ge{first}", 3),
        (f"le{first - timedelta(days=1)}", 0),
        (f"gt{last}", 0),
        (f"{first}", days.count(first)),
        (f"{last}", days.count(last)),
    ]:
        found = await client.get(
            f"/fhir/AuditEvent?agent={facility.client_id}&date={when}", headers=auditor.headers
        )
        assert len(found.json().get("entry", [])) == expected, when
    bad = await client.get("/fhir/AuditEvent?date=yesterday", headers=auditor.headers)
    assert bad.status_code == 400
    unknown = await client.get("/fhir/AuditEvent?subtype=read", headers=auditor.headers)
    assert unknown.status_code == 400

    # The auditor's own searches are audited too.
    mine = await client.get(f"/fhir/AuditEvent?agent={auditor.client_id}", headers=auditor.headers)
    assert len(mine.json()["entry"]) >= 10
    one = mine.json()["entry"][-1]["resource"]
    r = await client.get(f"/fhir/AuditEvent/{one['id']}", headers=auditor.headers)
    assert r.status_code == 200 and r.json() == one


async def test_who_may_search(
    app: Any, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    facility = await caller(app, client, "facility")
    citizen = unique("0")
    r = await client.post("/fhir/Patient", json=patient(citizen), headers=facility.headers)
    mine = r.json()["id"]
    r = await client.post("/fhir/Patient", json=patient(), headers=facility.headers)
    other = r.json()["id"]
    me = await caller(app, client, "patient", patient=citizen)

    r = await client.get("/fhir/AuditEvent", headers=me.headers)
    assert r.status_code == 200, r.text
    seen = [e["resource"] for e in r.json()["entry"]]
    assert seen and all(f"Patient/{mine}" in entities(e, "1") for e in seen)
    r = await client.get(f"/fhir/AuditEvent?patient=Patient/{other}", headers=me.headers)
    assert r.json().get("entry", []) == []
    r = await client.get(f"/fhir/AuditEvent?patient=Patient/{mine}", headers=me.headers)
    # Now also the patient's own first search, which returned events about their record.
    assert [e["resource"]["id"] for e in r.json()["entry"]][1:] == [e["id"] for e in seen]

    auditor = await caller(app, client, "auditor")
    r = await client.get(f"/fhir/AuditEvent?patient=Patient/{other}", headers=auditor.headers)
    [event] = [e["resource"] for e in r.json()["entry"]]
    hidden = await client.get(f"/fhir/AuditEvent/{event['id']}", headers=me.headers)
    assert hidden.status_code == 404

    for role in ("facility", "clinician", "admin"):
        someone = await caller(app, client, role)
        r = await client.get("/fhir/AuditEvent", headers=someone.headers)
        assert r.status_code == 403, role
        r = await client.get(f"/fhir/AuditEvent/{event['id']}", headers=someone.headers)
        assert r.status_code == 403, role
    r = await anonymous.get(f"/fhir/AuditEvent?patient=Patient/{other}", headers=FHIR_JSON)
    assert r.status_code == 401


async def test_searches_are_driven_by_an_index(app: Any) -> None:
    """Each search's driving (first) predicate uses an index of the audit collection; the
    embedded server's explain is trusted for single predicates only (docs/DESIGN)."""
    audit = app.state.mongo.audit
    for predicate, index in [
        ({"_hub.patients": {"$in": ["Patient/a", "Patient/b"]}}, "patient_time"),
        ({"_hub.agent": {"$in": ["facility-x"]}}, "agent_time"),
        ({"_hub.at": {"$gte": "20260101T000000000Z"}}, "time"),
        ({"_hub.at": {"$lt": "20260102T000000000Z"}}, "time"),
    ]:
        assert winning_index(await audit.find(predicate).explain()) == index, predicate
