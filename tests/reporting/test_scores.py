"""Data quality per facility on the six axes, from the counters: a facility sending clean,
coded, consented records scores well; one sending records breaking the national profiles, and
duplicates, scores lower, ranks lower, and its report names the rules and records to fix."""

import csv
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.profiles.records import vn_consent
from tests.profiles.test_write_modes import bad_patient, good_patient
from tests.reporting.test_reports import organization
from tests.support import unique


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    answer = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert answer.status_code == 201, answer.text
    return f"{resource['resourceType']}/{answer.json()['id']}"


async def test_scores_rank_the_careful_facility_first_and_name_what_the_other_must_fix(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient, facility_client: Any
) -> None:
    province = unique("P")
    careful, careless = unique("Q"), unique("Q")
    for code in (careful, careless):
        answer = await admin.post(
            "/fhir/Organization", json=organization(code, province, "regional", "hospital")
        )
        assert answer.status_code == 201
    good = await facility_client(careful)
    person = await created(good, good_patient())
    consent = vn_consent() | {"patient": {"reference": person}}
    await created(good, consent)
    sloppy = await facility_client(careless)
    twice = bad_patient()
    broken = [await created(sloppy, twice), await created(sloppy, twice)]
    await created(sloppy, good_patient())

    report = (await ministry.get("/reports/quality", params={"province": province})).json()
    assert report["axes"] == ["correct", "sufficient", "clean", "live", "unified", "shared"]
    rows = {r["facility"]: r for r in report["facilities"]}
    assert rows[careful]["scores"] == {
        "correct": 100.0,
        "sufficient": 100.0,
        "clean": 100.0,
        "live": 100.0,
        "unified": 100.0,
        "shared": 100.0,
    }
    worse = rows[careless]["scores"]
    # 1 of 3 Patients valid; 1 of 3 identified, 2 of 3 not a duplicate; no consent.
    assert worse["correct"] == pytest.approx(33.3)
    assert worse["clean"] == pytest.approx((33.3 + 66.7) / 2, abs=0.1)
    assert (worse["shared"], worse["live"]) == (0.0, 100.0)
    assert rows[careful]["province_rank"] == 1 and rows[careless]["province_rank"] == 2
    assert rows[careful]["rank"] < rows[careless]["rank"]
    [summary] = report["provinces"]
    assert summary["facilities"] == 2
    assert summary["scores"]["correct"] == pytest.approx((100 + 33.3) / 2, abs=0.1)

    detail = (await ministry.get(f"/reports/quality/{careless}")).json()
    assert detail["checked"] == 3 and detail["scores"] == worse
    first = detail["worst_rules"][0]
    assert first["severity"] == "error" and first["records"] == 2
    assert set(first["examples"]) == set(broken)
    assert {r["rule"] for r in detail["worst_rules"]} >= {
        "vn-patient/Patient.birthDate/min",
        "vn-cccd/citizen-id",
    }

    # Fixing a record moves the score at once.
    fixed = good_patient(id=broken[0].split("/")[1])
    assert (await sloppy.put(f"/fhir/{broken[0]}", json=fixed)).status_code == 200
    again = (await ministry.get(f"/reports/quality/{careless}")).json()
    assert again["scores"]["correct"] == pytest.approx(66.7)
    rule = next(r for r in again["worst_rules"] if r["rule"] == "vn-patient/Patient.birthDate/min")
    assert (rule["records"], rule["examples"]) == (1, [broken[1]])

    table = await ministry.get("/reports/quality", params={"province": province, "format": "csv"})
    by_code = {r["facility"]: r for r in csv.DictReader(io.StringIO(table.text))}
    assert by_code[careful]["correct"] == "100.0" and by_code[careless]["province_rank"] == "2"
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    before = (
        await ministry.get("/reports/quality", params={"province": province, "date": yesterday})
    ).json()
    assert all(r["composite"] is None for r in before["facilities"])


async def test_an_unknown_facility_is_404_and_a_facility_system_may_not_read_the_reports(
    ministry: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    answer = await ministry.get(f"/reports/quality/{unique('nowhere')}")
    assert answer.status_code == 404
    assert (await client.get("/reports/quality")).status_code == 403
