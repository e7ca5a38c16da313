"""What the ministry and the facilities read of the hub's data, over HTTP.

    GET /reports/coverage[?province=&level=&type=&ownership=&date=&format=csv]
                                              facilities registered, connected and live,
                                              records, patients and people: nationally, per
                                              province, per level, per facility
    GET /reports/roadmap[?date=&format=csv]   each milestone of the roadmap: its targets,
                                              where the country stands, status and trend
    GET /reports/quality[?province=&level=&type=&ownership=&date=&format=csv]
                                              each facility's data quality on the six axes,
                                              its composite and ranks; provinces; the nation
    GET /reports/quality/{facility}[?date=]   one facility's scores and the rules that cost it
                                              points (worst first): how many records break each

The data quality the national profiles measured:

    GET /quality[?facility=]                  per facility: records, checked, valid, complete,
                                              coded, Patients identified; per rule: how many
                                              records break it. A facility sees its own; the
                                              ministry and admins every facility's.
    GET /quality/findings[?rule=&type=&_count=&after=]
                                              a facility's own records with findings: each
                                              finding's rule, element path and message, so that
                                              it knows what to fix, record by record.

No health data leaves here but a facility's own findings, to that facility: the ministry's
reports carry counts, never a record's id or reference. Every call is audited
(hub/audit/middleware.py records /reports and /quality as it records /fhir). The reports are
the ministry's and admins'.
"""

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from hub.auth.caller import Caller
from hub.auth.deps import require_role
from hub.auth.roles import Role
from hub.fhir.outcome import BadRequest, Forbidden, NotFound
from hub.fhir.profiling import validator_for
from hub.reporting import coverage, quality, roadmap, scores

router = APIRouter(prefix="/quality", tags=["data quality"])
_MAX_COUNT = 500

Reader = Annotated[
    Caller,
    Depends(require_role(Role.FACILITY, Role.MINISTRY, Role.ADMIN, doing="read data quality")),
]
Facility = Annotated[
    Caller, Depends(require_role(Role.FACILITY, doing="read its records' findings"))
]


def _facility_of(caller: Caller, asked: str | None) -> str | None:
    """Return the facility a caller may read: a facility system its own only."""
    if caller.role != Role.FACILITY:
        return asked
    if asked is not None and asked != caller.facility:
        raise Forbidden(f"A facility reads its own data quality ({caller.facility}), not {asked}")
    return caller.facility


@router.get("")
async def quality_summary(
    request: Request, caller: Reader, facility: str | None = None
) -> JSONResponse:
    """Counts per facility, and the rules broken, most broken first."""
    state = request.app.state
    which = _facility_of(caller, facility)
    totals = await state.counters.facilities()
    catalogue = validator_for(state.settings.country).rules()
    return JSONResponse(
        {
            "facilities": quality.summary(totals, which),
            "rules": quality.rules(totals, catalogue, which),
        }
    )


@router.get("/findings")
async def quality_findings(
    request: Request,
    caller: Facility,
    rule: str | None = None,
    resource_type: Annotated[str | None, Query(alias="type")] = None,
    count: Annotated[str, Query(alias="_count")] = "50",
    after: str | None = None,
) -> JSONResponse:
    """A facility's records with findings, in id order; `after` pages on."""
    if not (count.isascii() and count.isdigit()) or not 0 < int(count) <= _MAX_COUNT:
        raise BadRequest(f"_count must be a number from 1 to {_MAX_COUNT}", expression="_count")
    facility = _facility_of(caller, None)
    if facility is None:  # the unrestricted caller of a hub that does not require tokens
        raise BadRequest("Findings are read by a facility's own token")
    state = request.app.state
    totals = await state.counters.facilities()
    broken = [r["rule"] for r in quality.rules(totals, {}, facility)]
    scope = await state.scope_of(request)  # the one access decision: the facility's own
    rows = await quality.findings(
        state.store, scope, broken, rule, resource_type, int(count), after
    )
    more = len(rows) == int(count)
    return JSONResponse({"records": rows, "next": rows[-1]["record"] if more else None})


reports = APIRouter(prefix="/reports", tags=["reports"])
Analyst = Annotated[
    Caller, Depends(require_role(Role.MINISTRY, Role.ADMIN, doing="read the national reports"))
]
_CSV_SAFE = re.compile(r"^[=+\-@\t\r]")


def day_param(value: str | None) -> date | None:
    """Read the `date` parameter: a day, yyyy-mm-dd."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"date must be a day like 2026-11-27, not {value!r}", expression="date"
        ) from None


def _codes(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _answer(report: dict[str, Any], rows: list[dict[str, Any]], form: str, name: str) -> Response:
    """Answer a report as JSON, or its rows as CSV."""
    if form == "json":
        return JSONResponse(report)
    if form != "csv":
        raise BadRequest(f"format must be json or csv, not {form!r}", expression="format")
    out = io.StringIO()
    columns = list(rows[0]) if rows else []
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: Any) -> str:
    """Return a CSV cell; text a spreadsheet would take for a formula is quoted with '."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    text = "" if value is None else str(value)
    return "'" + text if _CSV_SAFE.match(text) else text


@dataclass(frozen=True)
class Filters:
    """What a report is asked for: which facilities, as of which day, in which format."""

    scope: dict[str, list[str]]
    on: date | None
    form: str


def filters(
    province: str | None = None,
    level: str | None = None,
    type: str | None = None,  # noqa: A002 - the reports' own parameter name
    ownership: str | None = None,
    day: Annotated[str | None, Query(alias="date")] = None,
    form: Annotated[str, Query(alias="format")] = "json",
) -> Filters:
    """Read a report's filters: comma-separated codes of each, a day, json or csv."""
    scope = {"province": province, "level": level, "type": type, "ownership": ownership}
    return Filters({k: _codes(v) for k, v in scope.items()}, day_param(day), form)


Filtered = Annotated[Filters, Depends(filters)]


@reports.get("/coverage")
async def coverage_report(request: Request, caller: Analyst, asked: Filtered) -> Response:
    """Facilities registered, connected and live, records and people."""
    state = request.app.state
    report = await coverage.coverage(
        state.registry, state.counters, asked.scope, asked.on, state.settings.live_days
    )
    rows = [{k: v for k, v in r.items() if k != "records_by_type"} for r in report["facilities"]]
    return _answer(report, rows, asked.form, f"coverage-{report['date']}")


@reports.get("/roadmap")
async def roadmap_report(
    request: Request,
    caller: Analyst,
    day: Annotated[str | None, Query(alias="date")] = None,
    form: Annotated[str, Query(alias="format")] = "json",
) -> Response:
    """Each milestone: its targets, the figures against them, its status and trend."""
    state = request.app.state
    report = await roadmap.roadmap(state.registry, state.counters, state.milestones, day_param(day))
    rows = [
        {
            "id": m["id"],
            "due": m["due"],
            "title": m["title"].get("en") or next(iter(m["title"].values())),
            "status": m["status"],
            "days_left": m["days_left"],
            **{f"target_{k}": v for k, v in m["targets"].items()},
            **{f"actual_{k}": v for k, v in m["actual"].items()},
        }
        for m in report["milestones"]
    ]
    return _answer(report, rows, form, f"roadmap-{report['date']}")


@reports.get("/quality")
async def quality_report(request: Request, caller: Analyst, asked: Filtered) -> Response:
    """Each facility's data quality on the six axes, its composite and ranks."""
    state = request.app.state
    report = await scores.quality(
        state.registry, state.counters, asked.scope, asked.on, state.settings.live_days
    )
    rows = [
        {k: v for k, v in r.items() if k != "scores"} | r["scores"] for r in report["facilities"]
    ]
    return _answer(report, rows, asked.form, f"quality-{report['date']}")


@reports.get("/quality/{facility}")
async def facility_quality_report(
    request: Request,
    facility: str,
    caller: Analyst,
    day: Annotated[str | None, Query(alias="date")] = None,
) -> Response:
    """One facility's scores and the rules that cost it points, with their counts."""
    state = request.app.state
    on = day_param(day)
    report = await scores.quality(
        state.registry, state.counters, {"facility": [facility]}, on, state.settings.live_days
    )
    if not report["facilities"]:
        raise NotFound(f"No facility {facility} in the registry, nor any record of it")
    counted = (await coverage.figures(state.counters, on)).get(facility, coverage.Figures())
    validator = validator_for(state.settings.country)
    row = report["facilities"][0]
    return JSONResponse(scores.facility_quality(row, counted, validator))
