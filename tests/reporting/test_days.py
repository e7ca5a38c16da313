"""Every "today" of the reports is the deployment's local day, UTC+7 here: a write at 16:59 UTC
is 23:59 on day D there, one at 17:00 UTC is midnight starting D+1. Each test runs a second hub
whose clock is stopped at fixed instants (`hub_at`); the expected days are worked out by hand
from those instants and the seven hours, never by the code under test.

Each test writes on days of its own: a past day a report asks for is kept, and a later write
stamped on that day would not be in what was kept (the real clock never goes back)."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.reporting.test_reports import hub_at, register, submit
from tests.support import FHIR_JSON, client_for, patient, unique


async def stats(app: Any, key: str) -> dict[str, Any]:
    doc = await app.state.mongo.stats.find_one({"_id": key})
    return dict(doc or {})


async def coverage(ministry: httpx.AsyncClient, province: str, **params: str) -> dict[str, Any]:
    answer = await ministry.get("/reports/coverage", params={"province": province, **params})
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


async def test_a_write_at_16_59_utc_counts_on_its_day_and_one_at_17_00_on_the_next(
    app: Any,
) -> None:
    code = unique("C")
    late, early = unique("late"), unique("early")
    async with hub_at(app, datetime(2026, 3, 9, 16, 59, tzinfo=UTC)) as hub:
        async with client_for(hub, "facility", facility=code) as client:
            answer = await client.post("/fhir/Patient", json=patient(late), headers=FHIR_JSON)
            assert answer.status_code == 201, answer.text
            hub.state.clock.set(datetime(2026, 3, 9, 17, 0, tzinfo=UTC))
            answer = await client.post("/fhir/Patient", json=patient(early), headers=FHIR_JSON)
            assert answer.status_code == 201, answer.text
    # 16:59 UTC is 23:59 on 9 March in UTC+7; 17:00 UTC is 00:00 on 10 March.
    assert (await stats(app, f"d|{code}|2026-03-09"))["accepted"] == 1
    assert (await stats(app, f"d|{code}|2026-03-10"))["accepted"] == 1
    assert await stats(app, f"d|{code}|2026-03-08") == {}
    persons = app.state.mongo.persons
    assert (await persons.find_one({"_id": late}))["day"] == "2026-03-09"
    assert (await persons.find_one({"_id": early}))["day"] == "2026-03-10"
    total = await stats(app, f"f|{code}")
    assert (total["first"], total["last"]) == (
        datetime(2026, 3, 9, 16, 59, tzinfo=UTC),
        datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
    )


async def test_the_roadmap_plots_a_first_submission_on_its_local_day(
    app: Any, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A facility first sending at 00:00 local time (17:00 UTC the day before) is connected on
    the local day, not on the UTC one; the roadmap's today turns at local midnight too."""
    codes = await register(admin, unique("P"))
    plan = {
        "milestones": [
            {
                "id": "days",
                "due": "2026-04-30",
                "title": {"en": "Three facilities"},
                "scope": {"facility": codes},
                "targets": {"connected_share": 1.0},
            }
        ]
    }
    (tmp_path / "roadmap.json").write_text(json.dumps(plan))
    at = datetime(2026, 4, 6, 16, 59, tzinfo=UTC)
    async with hub_at(app, at, roadmap_file=tmp_path / "roadmap.json") as hub:
        async with client_for(hub, "ministry") as ministry:
            await submit(hub, codes[0])  # 23:59 on 6 April in UTC+7
            before = (await ministry.get("/reports/roadmap")).json()
            hub.state.clock.set(datetime(2026, 4, 6, 17, 0, tzinfo=UTC))
            await submit(hub, codes[1])  # 00:00 on 7 April
            hub.state.clock.set(datetime(2026, 4, 6, 18, 0, tzinfo=UTC))  # 01:00 on 7 April
            after = (await ministry.get("/reports/roadmap")).json()
    [mine] = [m for m in before["milestones"] if m["id"] == "days"]
    assert before["date"] == "2026-04-06" and mine["days_left"] == 24
    assert mine["trend"] == [{"day": "2026-04-06", "connected_share": 0.3333}]
    [mine] = [m for m in after["milestones"] if m["id"] == "days"]
    assert after["date"] == "2026-04-07" and mine["days_left"] == 23
    assert mine["trend"] == [
        {"day": "2026-04-06", "connected_share": 0.3333},
        {"day": "2026-04-07", "connected_share": 0.6667},
    ]


async def test_coverage_turns_its_day_at_local_midnight_and_sums_the_day_just_over(
    app: Any, admin: httpx.AsyncClient
) -> None:
    province = unique("P")
    codes = await register(admin, province)
    async with hub_at(app, datetime(2026, 5, 11, 16, 59, tzinfo=UTC)) as hub:
        async with client_for(hub, "ministry") as ministry:
            await submit(hub, codes[0])  # 23:59 on 11 May in UTC+7
            today = await coverage(ministry, province)
            assert (today["date"], today["national"]["connected"]) == ("2026-05-11", 1)
            hub.state.clock.set(datetime(2026, 5, 11, 17, 0, tzinfo=UTC))  # 00:00 on 12 May
            await submit(hub, codes[1])
            now = await coverage(ministry, province)
            named = await coverage(ministry, province, date="2026-05-12")
            past = await coverage(ministry, province, date="2026-05-11")
            quality = await ministry.get("/reports/quality", params={"province": province})
            measure = await ministry.get(
                "/fhir/MeasureReport", params={"measure": "people-with-record"}
            )
    assert (now["date"], now["national"]["connected"]) == ("2026-05-12", 2)
    # Asked by its date, today is still the running totals, not a day summed and kept.
    assert (named["date"], named["national"]["connected"]) == ("2026-05-12", 2)
    # 11 May is over: its figures are summed from its day, ending at its local midnight.
    assert (past["date"], past["national"]["connected"]) == ("2026-05-11", 1)
    row = next(r for r in past["facilities"] if r["facility"] == codes[0])
    assert row["last_submission"] == "2026-05-11T23:59:59.999000+07:00"
    assert quality.json()["date"] == "2026-05-12"
    [entry] = measure.json()["entry"]
    assert entry["resource"]["period"] == {"start": "2026-05-12", "end": "2026-05-12"}
    assert entry["resource"]["date"] == "2026-05-11T17:00:00.000Z"
