"""Patient $everything: a person's whole record, across every facility holding part of it.
https://hl7.org/fhir/R4/patient-operation-everything.html

The records of every Patient that is the same person (hub/access/persons.py) are returned, each page
with the resources outside the compartment that its entries reference (practitioners,
organizations, medications). Pages are cut by key, so writes between pages move nothing.
"""

from typing import Any

from hub.auth.deps import require_scope
from hub.auth.roles import Role
from hub.fhir.bundle import new_bundle, search_entry
from hub.fhir.outcome import BadRequest, NotFound
from hub.fhir.params import parse_instant, type_list
from hub.fhir.references import walk
from hub.fhir.result import Context, Result
from hub.fhir.search import page_url, read_request
from hub.search import compartment
from hub.search.extract import values
from hub.search.registry import registry
from hub.search.values import BadValue, DateRange, date_range
from hub.store.resources import Stored

_PARAMS = {"start", "end", "_since", "_type", "_count", "_after", "_before", "_format"}
# What the first pass reads of each resource: enough to filter, order and page.
_SKELETON = {"resourceType": 1, "_hub.ts": 1}


def _care_dates(doc: dict[str, Any]) -> list[DateRange] | None:
    """Return the spans of a resource's clinical date, or None if its type has none."""
    param = registry().params(doc["resourceType"]).get("date")
    if param is None or param.type != "date":
        return None
    return [v for v in values(doc, param) if isinstance(v, DateRange)]


def _care_window(params: dict[str, str]) -> DateRange | None:
    start, end = params.get("start"), params.get("end")
    if not start and not end:
        return None
    try:
        return DateRange(
            date_range(start).low if start else "0" * 17, date_range(end).high if end else "9" * 17
        )
    except BadValue as error:
        raise BadRequest(f"start/end: {error}", expression="start" if start else "end") from None


async def everything(ctx: Context, patient_id: str, params: list[tuple[str, str]]) -> Result:
    """Return a page of everything in the person's compartments."""
    unknown = [k for k, _ in params if k not in _PARAMS]
    if unknown and ctx.strict:
        raise BadRequest(f"$everything has no parameter '{unknown[0]}'", expression=unknown[0])
    require_scope(ctx.caller, "r", "Patient")
    patient = await ctx.store.current("Patient", patient_id, ctx.scope, ctx.session)
    if patient is None or patient.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    types = type_list(dict(params).get("_type"))
    assert ctx.access is not None, "the router's context carries the access control"
    patients = await ctx.access.persons.same_person(patient.id)
    rows = await _rows(ctx, patients, dict(params), types)
    request = read_request(ctx, "Patient", params)
    start = 0
    if request.after is not None:
        start = next((i for i, r in enumerate(rows) if r > request.after), len(rows))
    elif request.before is not None:
        start = max(0, sum(1 for r in rows if r < request.before) - request.count)
    shown = rows[start : start + request.count]
    found = await ctx.store.currents([r[1] for r in shown], ctx.scope, ctx.session)
    matches = [found[r[1]] for r in shown if r[1] in found]
    referenced = await _referenced(ctx, matches, {r[1] for r in rows}, types)
    entries = [_entry(ctx, s, "match") for s in matches]
    entries += [_entry(ctx, s, "include") for s in referenced]
    path = f"Patient/{patient_id}/$everything"
    links = [{"relation": "self", "url": page_url(ctx, path, params)}]
    if start > 0 and shown:
        previous = page_url(ctx, path, params, "_before", shown[0])
        links.append({"relation": "previous", "url": previous})
    if start + request.count < len(rows) and shown:
        links.append({"relation": "next", "url": page_url(ctx, path, params, "_after", shown[-1])})
    return Result(200, new_bundle("searchset", entries, total=len(rows), link=links))


async def own_everything(ctx: Context, params: list[tuple[str, str]]) -> Result:
    """Return a page of the caller's own whole record (`GET Patient/$everything` with a
    patient's token): the person's rights to their data include taking all of it."""
    require_scope(ctx.caller, "r", "Patient")
    national_id = ctx.caller.patient if ctx.caller.role == Role.PATIENT else None
    if national_id is None:
        raise BadRequest(
            "Patient/$everything without a patient is a person's own record, for a patient's "
            "token; name the patient: Patient/{id}/$everything"
        )
    assert ctx.access is not None, "the router's context carries the access control"
    person = await ctx.access.persons.of_national_id(national_id)
    if person is None:
        raise NotFound("No Patient record carries your national ID yet")
    if not any(k == "_count" for k, _ in params):
        params = [*params, ("_count", str(ctx.settings.max_page_size))]
    return await everything(ctx, person.patients[0], params)


async def _rows(
    ctx: Context, patients: list[str], params: dict[str, str], types: list[str]
) -> list[list[Any]]:
    """Return [rank, key] of every resource in the compartments that the filters keep, in
    page order: the Patient records first, then by key."""
    window = _care_window(params)
    since = parse_instant(params["_since"], "_since") if "_since" in params else None
    # Without care dates to check, the first pass reads no resource content.
    projection = _SKELETON if window is None else None
    query: dict[str, Any] = {"_hub.sv": {"$in": compartment.record_keys(patients)}}
    if types:
        query["resourceType"] = {"$in": types}
    found = await ctx.store.find(query, ctx.scope, ctx.session, projection)
    if not types or "Patient" in types:
        by_id = {"_id": {"$in": [f"Patient/{p}" for p in patients]}}
        found += await ctx.store.find(by_id, ctx.scope, ctx.session, projection)
    rows = []
    for stored in found:
        doc = stored.doc
        if types and doc["resourceType"] not in types:
            continue
        if not ctx.caller.allows("r", doc["resourceType"]):
            continue  # what the token may not read is neither shown nor counted
        if since and doc["_hub"]["ts"] < since:
            continue
        if window and doc["resourceType"] != "Patient":
            dates = _care_dates(doc)
            if dates and not any(d.overlaps(window) for d in dates):
                continue
        rows.append([0 if doc["resourceType"] == "Patient" else 1, doc["_id"]])
    return sorted(rows)


async def _referenced(
    ctx: Context, shown: list[Stored], listed: set[str], types: list[str]
) -> list[Stored]:
    """Return the resources outside the compartment that the shown resources reference
    (of the `_type` types only, when given)."""
    wanted: set[str] = set()
    for stored in shown:
        for _, ref in walk(stored.resource, "", 1000).found:
            parts = ref.split("/")
            if len(parts) == 2 and ref not in listed and (not types or parts[0] in types):
                wanted.add(ref)
    found = await ctx.store.currents(sorted(wanted), ctx.scope, ctx.session)
    return [s for s in found.values() if not s.deleted and ctx.caller.allows("r", s.resource_type)]


def _entry(ctx: Context, stored: Stored, mode: str) -> dict[str, Any]:
    return search_entry(ctx, stored, mode, stored.resource)
