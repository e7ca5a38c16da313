"""Data quality per facility on the six axes, from the counters: a facility sending clean,
coded, consented records scores well; one sending records breaking the national profiles, and
duplicates, scores lower, ranks lower, and its report names the rules to fix and how many
records break each. The ministry reads counts only; the facility reads its own records."""

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hub.fhir.resource_types import R4_RESOURCE_TYPES
from tests.profiles.records import vn_consent
from tests.profiles.test_write_modes import bad_patient, good_patient
from tests.reporting.test_reports import organization
from tests.support import FHIR_JSON, unique

MRN = "https://moh.gov.vn/fhir/sid/mrn"
# What a Reference.reference or a record's key looks like: "Type/id".
REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)/[A-Za-z0-9.\-]{1,64}(/_history/\w+)?")


async def created(client: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    answer = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert answer.status_code == 201, answer.text
    return f"{resource['resourceType']}/{answer.json()['id']}"


async def test_scores_rank_the_careful_facility_first_and_name_what_the_other_must_fix(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient, facility_client: Any
) -> None:
    province = unique("P")
    careful, careless = unique("Q"), unique("Q")
    # The hub's day before any record (read first: the run may cross midnight meanwhile).
    yesterday = (app.state.clock.today() - timedelta(days=1)).isoformat()
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
    assert first["share"] == pytest.approx(2 / 3, abs=1e-4)
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
    assert rule["records"] == 1

    table = await ministry.get("/reports/quality", params={"province": province, "format": "csv"})
    by_code = {r["facility"]: r for r in csv.DictReader(io.StringIO(table.text))}
    assert by_code[careful]["correct"] == "100.0" and by_code[careless]["province_rank"] == "2"
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


def is_reference(text: str) -> bool:
    """Tell whether a text is a reference to a record of some resource type."""
    found = REFERENCE.fullmatch(text)
    return found is not None and found["type"] in R4_RESOURCE_TYPES


def strings(node: Any) -> Iterator[str]:
    """Yield every key and text anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


async def test_the_ministry_reads_counts_of_records_never_the_records_themselves(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient, facility_client: Any
) -> None:
    """Records breaking the national profiles, with ids made from hospital numbers: the
    ministry's quality reports count them and name neither id, number nor reference; the
    facility finds them, its own, through /quality/findings."""
    province, code = unique("P"), unique("Q")
    answer = await admin.post(
        "/fhir/Organization", json=organization(code, province, "regional", "hospital")
    )
    assert answer.status_code == 201
    sloppy = await facility_client(code)
    numbers = [unique() for _ in range(2)]
    broken = [f"Patient/hn-{number}" for number in numbers]
    for number, reference in zip(numbers, broken, strict=True):
        record = bad_patient() | {"id": reference.split("/")[1]}
        record["identifier"].append({"system": f"{MRN}/{code}", "value": number})
        answer = await sloppy.put(f"/fhir/{reference}", json=record, headers=FHIR_JSON)
        assert answer.status_code == 201, answer.text

    detail = await ministry.get(f"/reports/quality/{code}")
    assert detail.status_code == 200, detail.text
    rules = {r["rule"]: r["records"] for r in detail.json()["worst_rules"]}
    assert rules["vn-patient/Patient.birthDate/min"] == 2
    answers = [
        detail,
        await ministry.get("/reports/quality", params={"province": province}),
        await ministry.get("/reports/quality", params={"province": province, "format": "csv"}),
        await ministry.get("/quality", params={"facility": code}),
        await ministry.get("/fhir/MeasureReport", params={"measure": "data-quality"}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in (*broken, *numbers):
            assert secret not in answer.text, (answer.url, secret)
        body = answer.json() if "json" in answer.headers["content-type"] else {}
        assert [t for t in strings(body) if t == "reference" or is_reference(t)] == []
    assert "examples" not in json.dumps(detail.json())

    mine = await sloppy.get(
        "/quality/findings", params={"rule": "vn-patient/Patient.birthDate/min"}
    )
    assert mine.status_code == 200, mine.text
    assert {r["record"] for r in mine.json()["records"]} == set(broken)
