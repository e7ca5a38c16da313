"""The break-the-glass review: each emergency declared, and what was done under its token.

`GET /audit/break-glass?since=&until=` (auditors only) answers JSON, oldest declaration first,
from the `audit` collection's break-the-glass events (its sparse `btg` index). Reading it is
audited: the audit middleware covers /audit as it covers /fhir.
"""

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.audit.record import Record
from hub.audit.search import key_of, period
from hub.audit.trail import ACCESS, DECLARATION, AuditTrail
from hub.auth.deps import TOKEN_HINT, CurrentCaller, require_scope
from hub.auth.roles import Role
from hub.fhir.outcome import BadRequest, Forbidden, Unauthorized
from hub.store.resources import instant

router = APIRouter(tags=["audit"])

REPORT_PATH = "/audit/break-glass"
# Without `since`, the report covers this many days back.
DEFAULT_DAYS = 30
# A report lists at most this many declarations (and says so): narrow since/until for more.
MAX_DECLARATIONS = 1000
# Accesses are looked for until this long after a token expired: a request that began under a
# valid token is recorded when it ends.
STRAGGLERS = timedelta(hours=1)
OUTCOMES = {"0": "success", "4": "minor-failure", "8": "serious-failure"}
_DECLARATION_FIELDS = ["id", "recorded", "agent", "entity", "_hub"]
_ACCESS_FIELDS = ["recorded", "outcome", "_hub"]


@router.get(REPORT_PATH)
async def break_glass_report(
    request: Request, caller: CurrentCaller, since: str | None = None, until: str | None = None
) -> JSONResponse:
    """Report the emergencies declared from `since` until `until` (FHIR dates or dateTimes;
    by default the last 30 days), each with the accesses made under its token; for auditors."""
    if not caller.authenticated:
        raise Unauthorized(
            f"The break-the-glass report needs a bearer token: {TOKEN_HINT}", error=None
        )
    if caller.role != Role.AUDITOR:
        raise Forbidden(
            f"The break-the-glass report is read by auditors, not by a {caller.role} client"
        )
    require_scope(caller, "s", "AuditEvent")
    now = request.app.state.clock.now()
    low = period(since, "since", "2026-11-01")[0] if since else now - timedelta(days=DEFAULT_DAYS)
    high = period(until, "until", "2026-11-30")[1] if until else now
    if low >= high:
        raise BadRequest(
            f"since ({instant(low)}) must come before until ({instant(high)})", expression="since"
        )
    report = await review(request.app.state.audit, low, high)
    _note(getattr(request.state, "audit", None), report)
    return JSONResponse(report, headers={"Cache-Control": "no-store"})


def _note(record: Record | None, report: dict[str, Any]) -> None:
    """Note for the report's own AuditEvent the declarations and patients it shows: reading
    the trail is audited like reading a record."""
    if record is None:
        return
    for declaration in report["declarations"]:
        record.resource(declaration["event"])
        for patient in [declaration["patient"], *declaration["accesses"]["patients"]]:
            if patient:
                record.patient(patient)


async def review(trail: AuditTrail, low: datetime, high: datetime) -> dict[str, Any]:
    """Return the declarations recorded in [low, high), oldest first, with their accesses."""
    # The btg clause first: the embedded server drives with the first indexed one.
    found = await trail.keys(
        {"_hub.btg": DECLARATION, "_hub.at": {"$gte": key_of(low), "$lt": key_of(high)}},
        _DECLARATION_FIELDS,
        MAX_DECLARATIONS + 1,
    )
    declarations = [_declaration(doc) for doc in found[:MAX_DECLARATIONS]]
    accesses = await _accesses(trail, declarations)
    for declaration in declarations:
        declaration["accesses"] = _summary(accesses.get(declaration["token"], []))
    return {
        "since": instant(low),
        "until": instant(high),
        "truncated": len(found) > MAX_DECLARATIONS,
        "declarations": declarations,
    }


async def _accesses(
    trail: AuditTrail, declarations: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Return the events of requests under the declarations' tokens, by token."""
    if not declarations:
        return {}
    first = min(d["declared"] for d in declarations)
    last = max(d["expires"] or d["declared"] for d in declarations)
    end = datetime.fromisoformat(last) + STRAGGLERS
    query = {
        "_hub.btg": ACCESS,
        "_hub.token": {"$in": [d["token"] for d in declarations]},
        "_hub.at": {"$gte": key_of(datetime.fromisoformat(first)), "$lt": key_of(end)},
    }
    by_token: dict[str, list[dict[str, Any]]] = {}
    for doc in await trail.keys(query, _ACCESS_FIELDS):
        by_token.setdefault(doc["_hub"]["token"], []).append(doc)
    return by_token


def _declaration(doc: dict[str, Any]) -> dict[str, Any]:
    """Return what a reviewer reads of one declaration's AuditEvent."""
    agent = doc["agent"][0]
    entities: list[dict[str, Any]] = doc.get("entity", [])
    issued: dict[str, Any] = next((e for e in entities if _role(e) == "13"), {})
    details = {d["type"]: d.get("valueString") for d in issued.get("detail", [])}
    patient = next((e["what"]["reference"] for e in entities if _role(e) == "1"), None)
    purpose = (agent.get("purposeOfUse") or [{}])[0]
    return {
        "event": f"AuditEvent/{doc['id']}",
        "declared": doc["recorded"],
        "client_id": doc["_hub"]["agent"],
        "facility": agent.get("location", {}).get("identifier", {}).get("value"),
        "practitioner": agent.get("altId"),
        "reason": purpose.get("text"),
        "patient": patient,
        "expires": details.get("expires"),
        "token": doc["_hub"]["token"],
    }


def _summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Return how many accesses, to whose records, with what outcomes, from when to when."""
    outcomes = Counter(OUTCOMES.get(e.get("outcome", ""), "unknown") for e in events)
    patients = sorted({p for e in events for p in e["_hub"].get("patients", [])})
    return {
        "count": len(events),
        "patients": patients,
        "outcomes": dict(sorted(outcomes.items())),
        "first": events[0]["recorded"] if events else None,
        "last": events[-1]["recorded"] if events else None,
    }


def _role(entity: dict[str, Any]) -> str | None:
    return entity.get("role", {}).get("code")
