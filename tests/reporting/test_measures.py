"""The reports as FHIR: Measure definitions and MeasureReports computed from the counters,
valid FHIR R4, agreeing with the JSON reports, read-only, for the ministry and admins."""

from typing import Any

import httpx

from fhir_profiles.base import base_problems
from hub.fhir.models import get_fhir_model_class
from tests.reporting.test_reports import register, submit
from tests.support import unique

BASE = "https://ehrhub.org/fhir/Measure/"


def assert_valid(resource: dict[str, Any]) -> None:
    """Assert a resource is valid FHIR R4 (the models and the base rules)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert base_problems(resource) == []


def stratum(report: dict[str, Any], group: int, code: str, value: str) -> dict[str, Any]:
    stratifier = next(
        s for s in report["group"][group]["stratifier"] if s["code"][0]["text"] == code
    )
    return next(s for s in stratifier["stratum"] if s["value"]["text"] == value)


def counts(part: dict[str, Any]) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in part["population"]}


async def test_measures_are_listed_read_and_valid(ministry: httpx.AsyncClient) -> None:
    bundle = (await ministry.get("/fhir/Measure")).json()
    ids = {e["resource"]["id"] for e in bundle["entry"]}
    assert ids == {"facilities-connected", "facilities-live", "people-with-record", "data-quality"}
    assert bundle["total"] == 4
    one = (await ministry.get("/fhir/Measure", params={"url": f"{BASE}data-quality"})).json()
    assert [e["resource"]["id"] for e in one["entry"]] == ["data-quality"]
    read = (await ministry.get("/fhir/Measure/facilities-live")).json()
    assert read["url"] == f"{BASE}facilities-live"
    assert_valid(read)
    assert (await ministry.get("/fhir/Measure/nothing")).status_code == 404


async def test_measure_reports_agree_with_the_json_reports(
    app: Any, admin: httpx.AsyncClient, ministry: httpx.AsyncClient
) -> None:
    province = unique("P")
    codes = await register(admin, province)
    await submit(app, codes[0])
    # Other hubs of the session counted what this process has not read yet: read it all now,
    # so that both reports, national figures included, speak of the same counts.
    app.state.counters.forget()
    answer = await ministry.get(
        "/fhir/MeasureReport",
        params={"measure": [f"{BASE}facilities-connected", "data-quality"]},
    )
    assert answer.status_code == 200, answer.text
    connected, quality = (e["resource"] for e in answer.json()["entry"])
    for report in (connected, quality):
        assert_valid(report)
        assert (report["status"], report["type"]) == ("complete", "summary")
    coverage = (await ministry.get("/reports/coverage")).json()
    national = coverage["national"]
    assert counts(connected["group"][0]) == {
        "denominator": national["registered"],
        "numerator": national["connected"],
    }
    assert connected["group"][0]["measureScore"]["value"] == national["connected_share"]
    mine = stratum(connected, 0, "province", province)
    assert counts(mine) == {"denominator": 3, "numerator": 1}
    scores = (await ministry.get("/reports/quality")).json()
    composite = next(g for g in quality["group"] if g["code"]["text"] == "composite")
    assert composite["measureScore"]["value"] == scores["national"]["composite"]
    everything = (await ministry.get("/fhir/MeasureReport")).json()
    assert everything["total"] == 4


async def test_bad_measures_writes_and_callers_are_refused(
    ministry: httpx.AsyncClient, client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    unknown = await ministry.get("/fhir/MeasureReport", params={"measure": "https://x.org/m"})
    assert unknown.status_code == 400
    assert "none of the hub's" in unknown.json()["issue"][0]["diagnostics"]
    assert (await ministry.get("/fhir/MeasureReport", params={"date": "soon"})).status_code == 400
    assert (await client.get("/fhir/MeasureReport")).status_code == 403
    for method, path in (("POST", "/fhir/MeasureReport"), ("PUT", "/fhir/Measure/data-quality")):
        answer = await admin.request(method, path, json={"resourceType": path.split("/")[2]})
        assert answer.status_code == 405, answer.text
        assert "computed by the hub" in answer.json()["issue"][0]["diagnostics"]
