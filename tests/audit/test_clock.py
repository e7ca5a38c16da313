"""The audit trail takes its times from the hub's one clock (`app.state.clock`): events are
recorded, searched by date and reviewed on the clock's days, across midnight too."""

from datetime import UTC, datetime
from typing import Any

import httpx
from audit.helpers import caller, events_of
from auth.helpers import declare
from support import patient, unique

from hub.core.clock import Clock

REASON = "Unconscious patient in the emergency room, no relatives reachable"
# Long past: these events must not be the newest of the trail, which other tests read. Either
# side of midnight in the deployment's zone (UTC+7): a day searched for is the country's day.
BEFORE_MIDNIGHT = datetime(2020, 2, 28, 16, 59, 59, 999000, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2020, 2, 28, 17, 0, 0, 1000, tzinfo=UTC)


async def test_events_are_recorded_and_found_on_the_clocks_day(
    app: Any, client: httpx.AsyncClient
) -> None:
    auditor = await caller(app, client, "auditor")
    clock: Clock = app.state.clock
    try:
        for at in (BEFORE_MIDNIGHT, AFTER_MIDNIGHT):
            clock.set(at)
            r = await client.get("/fhir/AuditEvent?_count=1", headers=auditor.headers)
            assert r.status_code == 200, r.text
    finally:
        clock.set(None)
    recorded = [e["recorded"] for e in await events_of(app, auditor.client_id)]
    assert recorded == ["2020-02-28T16:59:59.999Z", "2020-02-28T17:00:00.001Z"]
    for when, expected in [
        (["2020-02-28"], 1),
        (["2020-02-29"], 1),
        (["lt2020-02-29"], 1),
        (["ge2020-02-28", "le2020-02-29"], 2),
        (["gt2020-02-28", "lt2020-03-01"], 1),
    ]:
        dates = "&".join(f"date={w}" for w in when)
        r = await client.get(
            f"/fhir/AuditEvent?agent={auditor.client_id}&{dates}", headers=auditor.headers
        )
        assert len(r.json().get("entry", [])) == expected, when


async def test_declarations_are_recorded_and_reviewed_by_the_clock(
    app: Any, client: httpx.AsyncClient
) -> None:
    facility = await caller(app, client, "facility")
    r = await client.post("/fhir/Patient", json=patient(), headers=facility.headers)
    doctor = await caller(app, client, "clinician", practitioner=f"Practitioner/{unique('p')}")
    auditor = await caller(app, client, "auditor")
    clock: Clock = app.state.clock
    try:
        clock.set(datetime(2020, 2, 15, 10, 0, tzinfo=UTC))
        declared = await declare(
            client, doctor.token, reason=REASON, patient=f"Patient/{r.json()['id']}"
        )
        assert declared.status_code == 200, declared.text
        # The report's default period ends at the clock's now, and reaches back from it.
        clock.set(datetime(2020, 2, 20, 10, 0, tzinfo=UTC))
        r = await client.get("/audit/break-glass", headers=auditor.headers)
    finally:
        clock.set(None)
    assert r.status_code == 200, r.text
    assert r.json()["until"] == "2020-02-20T10:00:00.000Z"
    [mine] = [d for d in r.json()["declarations"] if d["client_id"] == doctor.client_id]
    assert mine["declared"] == "2020-02-15T10:00:00.000Z"
