"""The data quality the national profiles measured, over HTTP.

    GET /quality[?facility=]                  per facility and type: records, checked, valid,
                                              complete, coded, identified; per rule: how many
                                              records break it. A facility sees its own; the
                                              ministry and admins every facility's.
    GET /quality/findings[?rule=&type=&_count=&after=]
                                              a facility's own records with findings: each
                                              finding's rule, element path and message, so that
                                              it knows what to fix, record by record.

No health data leaves here but a facility's own findings, to that facility. Every call is
audited (hub/audit/middleware.py records /quality as it records /fhir).
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from hub.auth.caller import Caller
from hub.auth.deps import require_role
from hub.auth.roles import Role
from hub.fhir.outcome import BadRequest, Forbidden
from hub.reporting import quality

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
    """Counts per facility and type, and the rules broken, most broken first."""
    store = request.app.state.store
    which = _facility_of(caller, facility)
    return JSONResponse(
        {
            "facilities": await quality.summary(store, which),
            "rules": await quality.rules(store, which),
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
    rows = await quality.findings(
        request.app.state.store, facility, rule, resource_type, int(count), after
    )
    more = len(rows) == int(count)
    return JSONResponse({"records": rows, "next": rows[-1]["record"] if more else None})
