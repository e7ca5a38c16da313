"""Search and read the audit trail: `GET /fhir/AuditEvent?patient=&agent=&date=`.
https://hl7.org/fhir/R4/auditevent.html#search

Served from the `audit` collection, newest first. An auditor sees every event whole; a patient
only the events naming one of their own Patient records, each cut down to their own records
(hub/audit/view.py); any other caller with a token nothing (403). Without a token, while
tokens are optional, everything, as on the rest of the API.
"""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from hub.audit.event import BTG_LABEL
from hub.audit.trail import ACCESS, DECLARATION, AuditTrail
from hub.audit.view import event_for
from hub.auth.deps import require_scope
from hub.auth.roles import Role
from hub.fhir.bundle import new_bundle
from hub.fhir.outcome import BadRequest, Forbidden, NotFound
from hub.fhir.params import page_size
from hub.fhir.result import Context, Result
from hub.identity.person import national_id_key
from hub.search.values import BadValue, date_range, parse_stamp
from hub.store.scope import UNRESTRICTED

PARAMS = {
    "_id": "the event's id",
    "patient": "the Patient whose record was accessed: Patient/id, or :identifier=system|value",
    "agent": "the client id of who did it",
    "date": "when it was recorded, with ge, gt, le, lt or eq prefixes",
    "_security": "BTG: the events of break the glass (declarations and accesses)",
}
_CONTROL = {"_count", "_before", "_format", "_summary"}
_MISSING = {"patient": "_hub.patients.0", "agent": "_hub.agent"}
_PREFIXES = ("ge", "gt", "le", "lt", "eq")


async def visible_patients(ctx: Context, letter: str) -> list[str] | None:
    """Return the patients whose events the caller may see: None for all; 403 for none."""
    caller = ctx.caller
    if not caller.authenticated:
        return None
    if caller.role == Role.AUDITOR:
        require_scope(caller, letter, "AuditEvent")
        return None
    if caller.role == Role.PATIENT and caller.patient:
        require_scope(caller, letter, "AuditEvent")
        return await _patients_with_id(ctx, ctx.settings.national_id_system, caller.patient)
    raise Forbidden(
        f"The audit trail is read by auditors, and by patients about their own record; "
        f"not by a {caller.role} client"
    )


async def _patients_with_id(ctx: Context, system: str, value: str) -> list[str]:
    """Return the Patient references carrying one identifier, in any facility: a national ID's
    person as the one person resolver says (hub/access/persons.py)."""
    if system == ctx.settings.national_id_system and ctx.access is not None:
        person = await ctx.access.persons.of_national_id(value)
        return sorted(f"Patient/{p}" for p in person.patients) if person else []
    query = {"_hub.sv": national_id_key(system, value), "resourceType": "Patient"}
    found = await ctx.store.find(query, UNRESTRICTED, None, {"_id": 1})
    return sorted(str(s.doc["_id"]) for s in found)  # the store's key: Patient/id


async def history(ctx: Context, params: list[tuple[str, str]]) -> Result:
    """Return the trail's history, newest first: each event was created once, never changed.
    https://hl7.org/fhir/R4/http.html#history"""
    for name, _ in params:
        if name not in ("_count", "_since", "_before", "_format"):
            raise BadRequest(f"AuditEvent/_history does not take '{name}'", expression=name)
    since = [("date", f"ge{v}") for k, v in params if k == "_since"]
    rest = [(k, v) for k, v in params if k != "_since"]
    return await search(ctx, rest + since, "AuditEvent/_history", "history")


async def search(
    ctx: Context,
    params: list[tuple[str, str]],
    path: str = "AuditEvent",
    kind: str = "searchset",
) -> Result:
    """Return a page of AuditEvents matching the parameters, newest first."""
    visible = await visible_patients(ctx, "s")
    count = page_size(ctx, dict(params))
    query: dict[str, Any] = {}
    patients: set[str] | None = None
    key_range: dict[str, str] = {}
    for name, value in params:
        base, _, modifier = name.partition(":")
        if modifier == "missing" and base in (*_MISSING, "date", "_id"):
            if value not in ("true", "false"):
                raise BadRequest(f"{name} takes true or false, not '{value}'", expression=name)
            if base in ("date", "_id"):  # every event has an id and a recorded time
                patients = set() if value == "true" else patients
            else:
                query[_MISSING[base]] = {"$exists": value == "false"}
        elif base == "patient":
            wanted = await _patient_param(ctx, modifier, value, name)
            patients = wanted if patients is None else patients & wanted
        elif name == "_id":
            query["_id"] = {"$in": [v for v in value.split(",") if v]}
        elif name == "agent":
            query["_hub.agent"] = {"$in": [v for v in value.split(",") if v]}
        elif name == "_security":
            # BTG is the one label events carry; any other finds nothing.
            btg = any(_is_btg(v) for v in value.split(","))
            query["_hub.btg"] = {"$in": [DECLARATION, ACCESS] if btg else []}
        elif name == "date":
            _narrow(key_range, *_date_range(value))
        elif name == "_before":
            _narrow(key_range, None, value)
        elif name not in _CONTROL:
            raise BadRequest(
                f"AuditEvent is searched by {', '.join(PARAMS)}, not '{name}'", expression=name
            )
    if visible is not None:
        patients = set(visible) if patients is None else patients & set(visible)
    # The most selective clause first: the embedded server drives with the first indexed one.
    ordered: dict[str, Any] = {}
    if patients is not None:
        ordered["_hub.patients"] = {"$in": sorted(patients)}
    ordered |= query
    if key_range:
        ordered["_hub.at"] = key_range
    url = f"{ctx.base}/{path}"
    kept = [(k, v) for k, v in params if k != "_before"]
    links = [{"relation": "self", "url": f"{url}?{urlencode(kept)}" if kept else url}]
    summary = dict(params).get("_summary", "false")
    if summary == "count":
        total = await _trail(ctx).count(ordered) if patients != set() else 0
        return Result(200, new_bundle(kind, [], total=total, link=links))
    if summary != "false":
        raise BadRequest("AuditEvent takes _summary=count or false", expression="_summary")
    found = await _trail(ctx).find(ordered, count + 1) if patients != set() else []
    shown = found[:count]
    if len(found) > count:
        after = urlencode([*kept, ("_before", shown[-1]["id"])])
        links.append({"relation": "next", "url": f"{url}?{after}"})
    own = set(visible) if visible is not None else None
    events = [event_for(doc, own) for doc in shown]
    entries = [_entry(f"{ctx.base}/AuditEvent/{e['id']}", e, kind) for e in events]
    return Result(200, new_bundle(kind, entries, link=links))


def _entry(full_url: str, event: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "history":
        request = {"method": "POST", "url": "AuditEvent"}
        response = {"status": "201 Created", "lastModified": event["recorded"]}
        return {"fullUrl": full_url, "resource": event, "request": request, "response": response}
    return {"fullUrl": full_url, "resource": event, "search": {"mode": "match"}}


async def read(ctx: Context, event_id: str) -> Result:
    """Return one AuditEvent the caller may see; 404 otherwise."""
    visible = await visible_patients(ctx, "r")
    found = await _trail(ctx).get(event_id)
    own = set(visible) if visible is not None else None
    if found is None or (own is not None and not own & set(found["_hub"].get("patients", []))):
        raise NotFound(f"AuditEvent/{event_id} is not known")
    return Result(200, event_for(found, own))


async def _patient_param(ctx: Context, modifier: str, value: str, name: str) -> set[str]:
    wanted: set[str] = set()
    for item in (v for v in value.split(",") if v):
        if modifier == "identifier":
            system, sep, code = item.partition("|")
            if not sep or not code:
                raise BadRequest(f"{name} takes system|value, not '{item}'", expression=name)
            wanted.update(await _patients_with_id(ctx, system, code))
        elif not modifier:
            rid = item.removeprefix("Patient/")
            if "/" in rid or not rid:
                raise BadRequest(f"{name} takes Patient/id, not '{item}'", expression=name)
            wanted.add(f"Patient/{rid}")
        else:
            raise BadRequest(f"{name}: the modifier :{modifier} is not supported", expression=name)
    return wanted


def _date_range(value: str) -> tuple[str | None, str | None]:
    """Return the event-key bounds [low, high) of a date parameter such as ge2026-11-27."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    raw = value[2:] if value[:2] in _PREFIXES else value
    start, end = period(raw)
    low, high = key_of(start), key_of(end)
    return {
        "eq": (low, high),
        "ge": (low, None),
        "gt": (high, None),
        "le": (None, high),
        "lt": (None, low),
    }[prefix]


def period(
    raw: str, name: str = "date", example: str = "ge2026-11-27"
) -> tuple[datetime, datetime]:
    """Return the period [start, end) a FHIR date or dateTime value stands for, read as the
    search values read dates; a time must name its zone (the trail records UTC)."""
    try:
        if "T" in raw and not (raw.endswith("Z") or raw[-6:-5] in ("+", "-")):
            raise BadValue("no timezone")
        found = date_range(raw)
    except BadValue:
        raise BadRequest(
            f"{name} takes a FHIR date or dateTime with a timezone ({example}), not '{raw}'",
            expression=name,
        ) from None
    return parse_stamp(found.low), parse_stamp(found.high) + timedelta(milliseconds=1)


def _is_btg(token: str) -> bool:
    """Tell whether a token parameter's value is the BTG label: BTG, |BTG or system|BTG."""
    system, sep, code = token.rpartition("|")
    return code == BTG_LABEL["code"] and (not sep or system in ("", BTG_LABEL["system"]))


def _trail(ctx: Context) -> AuditTrail:
    assert ctx.audit_trail is not None, "the router gives AuditEvent interactions the trail"
    return ctx.audit_trail


def key_of(moment: datetime) -> str:
    """Return the event-key prefix of a moment: events recorded from then on sort at or after it."""
    return f"{moment.strftime('%Y%m%dT%H%M%S')}{moment.microsecond // 1000:03d}Z"


def _narrow(bounds: dict[str, str], low: str | None, high: str | None) -> None:
    if low is not None and (low > bounds.get("$gte", "")):
        bounds["$gte"] = low
    if high is not None and ("$lt" not in bounds or high < bounds["$lt"]):
        bounds["$lt"] = high
