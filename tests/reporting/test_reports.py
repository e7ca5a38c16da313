"""The ministry's coverage and roadmap reports: registered facilities against those connected
and live, per province, level and facility, as JSON and CSV, today and on a past day; each
roadmap milestone met, behind or missed."""

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.reporting.roadmap import RoadmapError
from tests.support import (
    FHIR_JSON,
    another_hub,
    client_for,
    patient,
    unique,
)

FACILITY = "https://moh.gov.vn/fhir/sid/facility"
PROVINCE = "https://ehrhub.org/fhir/StructureDefinition/province"
# Vietnam's offset, in minutes: the tests work out local days from it by hand.
UTC_PLUS_7 = 7 * 60
SYSTEMS = {
    "level": "https://moh.gov.vn/fhir/CodeSystem/facility-level",
    "type": "https://moh.gov.vn/fhir/CodeSystem/facility-type",
    "ownership": "https://moh.gov.vn/fhir/CodeSystem/facility-ownership",
}


def organization(code: str, province: str, level: str, kind: str) -> dict[str, Any]:
    """Return a registry Organization of a facility."""
    kinds = {"level": level, "type": kind, "ownership": "public"}
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY, "value": code}],
        "name": f"Facility {code}",
        "type": [{"coding": [{"system": SYSTEMS[k], "code": v}]} for k, v in kinds.items()],
        "address": [
            {
                "state": f"Province {province}",
                "extension": [
                    {
                        "url": PROVINCE,
                        "valueCoding": {"code": province, "display": f"Province {province}"},
                    }
                ],
            }
        ],
    }


async def register(admin: httpx.AsyncClient, province: str) -> list[str]:
    """Register three facilities in a province of the test's own: two hospitals (provincial,
    regional) and a commune station; return their codes."""
    codes = [unique("R") for _ in range(3)]
    kinds = (("provincial", "hospital"), ("regional", "hospital"), ("commune", "health-station"))
    for code, (level, kind) in zip(codes, kinds, strict=True):
        answer = await admin.post(
            "/fhir/Organization", json=organization(code, province, level, kind)
        )
        assert answer.status_code == 201, answer.text
    return codes


async def submit(app: Any, code: str) -> None:
    async with client_for(app, "facility", facility=code) as client:
        answer = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
        assert answer.status_code == 201, answer.text


@asynccontextmanager
async def hub_at(app: Any, at: datetime, **settings: Any) -> AsyncIterator[Any]:
    """Run a second hub of the deployment in UTC+7 whose clock is stopped at an instant: its
    writes are stamped and counted then, and its reports speak of then."""
    async with another_hub(app, utc_offset_minutes=UTC_PLUS_7, **settings) as second:
        second.state.clock.set(at)
        yield second


async def test_coverage_counts_registered_connected_and_live_per_province_level_facility(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient
) -> None:
    province = unique("P")
    codes = await register(admin, province)
    # The hub's day before any submission (read first: the run may cross midnight meanwhile).
    yesterday = (app.state.clock.today() - timedelta(days=1)).isoformat()
    await submit(app, codes[0])
    await submit(app, codes[2])
    report = (await ministry.get("/reports/coverage", params={"province": province})).json()
    assert report["scope"] == {"province": [province]}
    national = report["national"]
    assert (national["registered"], national["connected"], national["live"]) == (3, 2, 2)
    assert national["connected_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert national["records"] == 2 and national["patients"] == 2
    [row] = report["provinces"]
    assert (row["province"], row["name"], row["connected"]) == (province, f"Province {province}", 2)
    levels = {r["level"]: r["connected"] for r in report["levels"]}
    assert levels == {"provincial": 1, "regional": 0, "commune": 1}
    rows = {r["facility"]: r for r in report["facilities"]}
    assert rows[codes[0]]["records_by_type"] == {"Patient": 1}
    assert rows[codes[1]]["connected"] is False and rows[codes[1]]["first_submission"] is None
    hospitals = (
        await ministry.get("/reports/coverage", params={"province": province, "type": "hospital"})
    ).json()
    assert hospitals["national"]["registered"] == 2
    # The day before any submission: nothing was connected yet.
    before = (
        await ministry.get("/reports/coverage", params={"province": province, "date": yesterday})
    ).json()
    assert (before["date"], before["national"]["connected"]) == (yesterday, 0)


async def test_coverage_as_csv_has_a_row_per_facility_and_no_formula(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient
) -> None:
    province = unique("P")
    codes = await register(admin, province)
    await submit(app, codes[1])
    answer = await ministry.get("/reports/coverage", params={"province": province, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(r["facility"] for r in rows) == sorted(codes)
    assert {r["facility"]: r["connected"] for r in rows}[codes[1]] == "True"
    named = organization("=1+1", province, "commune", "clinic") | {"name": "=HYPERLINK(1)"}
    named["identifier"][0]["value"] = "=1+1"
    assert (await admin.post("/fhir/Organization", json=named)).status_code == 201
    answer = await ministry.get("/reports/coverage", params={"province": province, "format": "csv"})
    formula = [r for r in csv.DictReader(io.StringIO(answer.text)) if r["name"].endswith("(1)")]
    assert formula[0]["name"] == "'=HYPERLINK(1)"


async def test_bad_parameters_are_refused_with_what_is_wrong(ministry: httpx.AsyncClient) -> None:
    for params, words in (
        ({"date": "27/11/2026"}, "date must be a day"),
        ({"format": "xml"}, "format must be json or csv"),
    ):
        answer = await ministry.get("/reports/coverage", params=params)
        assert answer.status_code == 400
        assert words in answer.json()["issue"][0]["diagnostics"]


async def test_each_milestone_is_met_behind_or_missed(
    app: Any, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    province = unique("P")
    codes = await register(admin, province)
    # 17:30 UTC on 15 June is 00:30 on 16 June in UTC+7: the hub's today is 16 June.
    at = datetime(2026, 6, 15, 17, 30, tzinfo=UTC)
    soon = "2026-07-16"  # 30 days after 16 June
    plan = {
        "milestones": [
            {
                "id": "hospitals",
                "due": soon,
                "title": {"en": "Hospitals"},
                "scope": {"province": [province], "type": ["hospital"]},
                "targets": {"connected_share": 1.0},
            },
            {
                "id": "past",
                "due": "2025-01-01",
                "title": {"en": "Everyone, long ago"},
                "scope": {"province": [province]},
                "targets": {"connected_share": 1.0},
            },
            {
                "id": "half",
                "due": soon,
                "title": {"en": "Half"},
                "scope": {"facility": codes},
                "targets": {"connected_share": 0.5},
            },
        ]
    }
    (tmp_path / "roadmap.json").write_text(json.dumps(plan))
    async with hub_at(app, at, roadmap_file=tmp_path / "roadmap.json") as hub:
        await submit(hub, codes[0])
        await submit(hub, codes[2])
        async with client_for(hub, "ministry") as ministry:
            report = (await ministry.get("/reports/roadmap")).json()
            assert report["date"] == "2026-06-16"
            mine = {m["id"]: m for m in report["milestones"]}
            published = [m for m in report["milestones"] if m["id"].startswith("vn-")]
            assert [m["due"] for m in published] == ["2025-09-30", "2026-12-31"]
            hospitals = mine["hospitals"]
            assert (hospitals["actual"]["registered"], hospitals["actual"]["connected"]) == (2, 1)
            assert hospitals["status"] == "behind" and hospitals["days_left"] == 30
            assert hospitals["trend"] == [{"day": "2026-06-16", "connected_share": 0.5}]
            assert (mine["past"]["status"], mine["half"]["status"]) == ("missed", "met")
            await submit(hub, codes[1])
            again = {
                m["id"]: m for m in (await ministry.get("/reports/roadmap")).json()["milestones"]
            }
            assert again["hospitals"]["status"] == "met"
            table = await ministry.get("/reports/roadmap", params={"format": "csv"})
            rows = {r["id"]: r for r in csv.DictReader(io.StringIO(table.text))}
            assert rows["hospitals"]["status"] == "met"
            assert rows["hospitals"]["target_connected_share"] == "1.0"


def test_a_roadmap_file_that_cannot_be_read_stops_the_hub_saying_why(
    app: Any, tmp_path: Path
) -> None:
    cases = (
        ({"milestones": [{"id": "x", "due": "soon"}]}, "due must be a date"),
        (
            {"milestones": [{"id": "x", "due": "2026-01-01", "title": {"en": "X"}}]},
            "needs a target",
        ),
        (
            {
                "milestones": [
                    {"id": "x", "due": "2026-01-01", "title": {"en": "X"}, "targets": {"beds": 1}}
                ]
            },
            "unknown beds",
        ),
        ({"plan": []}, "expected"),
    )
    for content, words in cases:
        path = tmp_path / "roadmap.json"
        path.write_text(json.dumps(content))
        settings = app.state.settings.model_copy(update={"roadmap_file": path})
        with pytest.raises(RoadmapError, match=words):
            create_app(settings)
