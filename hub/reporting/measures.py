"""The reports as FHIR: the Measures the hub computes and their MeasureReports.

    GET /fhir/Measure[?url=&_id=]          the Measure definitions (fhir_profiles/common)
    GET /fhir/Measure/{id}
    GET /fhir/MeasureReport?measure=…[&date=yyyy-mm-dd]
                                           a summary MeasureReport of each Measure asked for
                                           (its canonical URL or id; all without `measure`),
                                           as of now or the end of a day, stratified per
                                           province and level

MeasureReports are computed from the counters on each request, never stored, and carry no
personal data: the ministry's and admins' to read, like the other reports. No client writes
either type (405, `hub.fhir.validate.storable_type`).
"""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from hub.auth.caller import Caller
from hub.auth.deps import authenticate, require_role
from hub.auth.roles import Role
from hub.fhir.bundle import new_bundle
from hub.fhir.http import json_response
from hub.fhir.outcome import BadRequest, NotFound
from hub.reporting import coverage, scores
from hub.reporting.routes import day_param
from hub.store.resources import instant

Resource = dict[str, Any]
SCORING = "http://terminology.hl7.org/CodeSystem/measure-population"

router = APIRouter(prefix="/fhir", tags=["reports"], dependencies=[Depends(authenticate)])
Analyst = Annotated[
    Caller, Depends(require_role(Role.MINISTRY, Role.ADMIN, doing="read the national measures"))
]


def _population(code: str, count: int) -> Resource:
    return {"code": {"coding": [{"system": SCORING, "code": code}]}, "count": count}


def _proportion(summary: Resource, numerator: str) -> Resource:
    """A group or stratum of a proportion measure from a coverage summary."""
    share = summary.get(f"{numerator}_share")
    found: Resource = {
        "population": [
            _population("denominator", summary["registered"]),
            _population("numerator", summary[numerator]),
        ]
    }
    if share is not None:
        found["measureScore"] = {"value": share}
    return found


def _stratifier(code: str, rows: list[Resource], part: Any) -> Resource:
    return {
        "code": [{"text": code}],
        # A facility the registry gives no province or level is stratified as "unknown".
        "stratum": [{"value": {"text": str(row[code] or "unknown")}} | part(row) for row in rows],
    }


def _connected(report: Resource, numerator: str) -> list[Resource]:
    group = _proportion(report["national"], numerator)
    group["stratifier"] = [
        _stratifier(key, report[f"{key}s"], lambda row: _proportion(row, numerator))
        for key in ("province", "level")
    ]
    return [group]


def _score(value: float | None, facilities: int) -> Resource:
    found: Resource = {"population": [_population("measure-population", facilities)]}
    if value is not None:
        found["measureScore"] = {"value": value}
    return found


def _quality(report: Resource) -> list[Resource]:
    """One group for the composite and one per axis, stratified per province."""
    scored = [r for r in report["facilities"] if r["composite"] is not None]
    groups = []
    for axis in ("composite", *report["axes"]):

        def value(row: Resource, axis: str = axis) -> float | None:
            return row["composite"] if axis == "composite" else row["scores"][axis]

        national = report["national"]
        group: Resource = {"code": {"text": axis}} | _score(
            national["composite"] if axis == "composite" else national["scores"][axis],
            len(scored),
        )
        group["stratifier"] = [
            _stratifier(
                "province", report["provinces"], lambda r: _score(value(r), r["facilities"])
            )
        ]
        groups.append(group)
    return groups


async def measure_report(request: Request, measure: Resource, on: date | None) -> Resource:
    """Compute the summary MeasureReport of one Measure."""
    state = request.app.state
    kind = measure["id"]
    if kind in ("facilities-connected", "facilities-live"):
        report = await coverage.coverage(
            state.registry, state.counters, {}, on, state.settings.live_days
        )
        groups = _connected(report, "connected" if kind == "facilities-connected" else "live")
    elif kind == "people-with-record":
        report = {"date": (on or state.clock.today()).isoformat()}
        groups = [
            {"population": [_population("initial-population", await state.counters.people(on))]}
        ]
    elif kind == "data-quality":
        report = await scores.quality(
            state.registry, state.counters, {}, on, state.settings.live_days
        )
        groups = _quality(report)
    else:
        raise NotFound(f"The hub computes no MeasureReport of {measure['url']}")
    day = report["date"]
    return {
        "resourceType": "MeasureReport",
        "id": f"{kind}-{day}",
        "status": "complete",
        "type": "summary",
        "measure": measure["url"],
        "date": instant(state.clock.now()),
        "period": {"start": day, "end": day},
        "group": groups,
    }


def _measures(request: Request) -> dict[str, Resource]:
    """The Measures of the country pack, by id."""
    pack = request.app.state.pack
    return {m["id"]: m for m in pack.measures.values()}


def _searchset(resources: list[Resource]) -> Resource:
    return new_bundle("searchset", [{"resource": r} for r in resources], total=len(resources))


@router.get("/Measure")
async def measure_search(
    request: Request, caller: Analyst, url: str | None = None, _id: str | None = None
) -> Response:
    """List the Measures the hub computes (by `url` or `_id`)."""
    found = [
        m
        for m in _measures(request).values()
        if (url is None or m["url"] == url) and (_id is None or m["id"] == _id)
    ]
    return json_response(_searchset(found))


@router.get("/Measure/{measure_id}")
async def measure_read(request: Request, measure_id: str, caller: Analyst) -> Response:
    """Read one Measure."""
    measure = _measures(request).get(measure_id)
    if measure is None:
        raise NotFound(f"Measure/{measure_id} is not known")
    return json_response(measure)


@router.get("/MeasureReport")
async def measure_report_search(
    request: Request,
    caller: Analyst,
    measure: Annotated[list[str] | None, Query()] = None,
    day: Annotated[str | None, Query(alias="date")] = None,
) -> Response:
    """Compute the MeasureReport of each Measure asked for (all, without `measure`)."""
    known = _measures(request)
    by_url = {m["url"]: m for m in known.values()}
    wanted = []
    for name in measure or list(known):
        for one in name.split(","):
            found = by_url.get(one.split("|")[0]) or known.get(one.removeprefix("Measure/"))
            if found is None:
                raise BadRequest(
                    f"measure {one!r} is none of the hub's: {', '.join(sorted(by_url))}",
                    expression="measure",
                )
            wanted.append(found)
    on = day_param(day)
    return json_response(_searchset([await measure_report(request, m, on) for m in wanted]))
