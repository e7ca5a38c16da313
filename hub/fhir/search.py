"""FHIR search interaction, at type, compartment and system level.
https://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from hub.auth.deps import require_scope
from hub.auth.roles import Role
from hub.fhir.bundle import new_bundle, search_entry
from hub.fhir.outcome import BadRequest, Issue, TooCostly, operation_outcome
from hub.fhir.params import page_size, type_list
from hub.fhir.result import Context, Result
from hub.fhir.validate import storable_type
from hub.search import engine, page, plan
from hub.search.compartment import contains as compartment_contains
from hub.search.include import included, parse_includes
from hub.search.query import Query, Unknown, parse
from hub.search.registry import registry
from hub.search.shape import SUMMARIES, shape
from hub.store.resources import Stored

# Page cursors: the hub's own parameters, written into next and previous links.
_CURSORS = ("_after", "_before")
_TOTALS = ("none", "estimate", "accurate")


@dataclass
class Request:
    """The result-control parameters of a search, read once."""

    params: list[tuple[str, str]]
    count: int
    sort: list[page.SortKey]
    total: str | None = None  # not asked: given where it costs nothing more
    summary: str = "false"
    elements: list[str] = field(default_factory=list)
    after: list[Any] | None = None
    before: list[Any] | None = None


def _last(params: list[tuple[str, str]], name: str) -> str | None:
    found = [v for k, v in params if k == name]
    return found[-1] if found else None


def read_request(ctx: Context, resource_type: str | None, params: list[tuple[str, str]]) -> Request:
    """Read `_count`, `_sort`, `_total`, `_summary`, `_elements` and the page cursor."""
    request = Request(
        params, page_size(ctx, dict(params)), page.parse_sort(resource_type, _last(params, "_sort"))
    )
    total = _last(params, "_total")
    if total is not None:
        if total not in _TOTALS:
            choices = ", ".join(_TOTALS)
            raise BadRequest(f"_total takes {choices}, not '{total}'", expression="_total")
        request.total = total
    summary = _last(params, "_summary")
    if summary is not None:
        if summary not in SUMMARIES:
            raise BadRequest(
                f"_summary takes {', '.join(SUMMARIES)}, not '{summary}'", expression="_summary"
            )
        request.summary = summary
    elements = _last(params, "_elements")
    if elements:
        request.elements = [e.strip() for e in elements.split(",") if e.strip()]
    for name in _CURSORS:
        raw = _last(params, name)
        if raw is not None:
            setattr(request, name[1:], page.read_cursor(raw, name))
    return request


def _warnings(ctx: Context, queries: list[Query]) -> list[Issue]:
    """Refuse unknown parameters under `handling=strict`; report them otherwise."""
    unknown: dict[str, Unknown] = {u.name: u for q in queries for u in q.unknown}
    if unknown and ctx.strict:
        first = next(iter(unknown.values()))
        raise BadRequest(f"{first} (Prefer: handling=strict)", expression=first.name)
    return [
        Issue("not-supported", f"{u}; the parameter was ignored", "warning", [u.name])
        for u in unknown.values()
    ]


async def search_type(
    ctx: Context,
    resource_type: str,
    params: list[tuple[str, str]],
    compartment: list[str] | None = None,
    path: str | None = None,
) -> Result:
    """Return a page of the resources of one type that match the search parameters.

    `compartment` limits the search to these patients' compartments (`Patient/{id}/{type}`).
    """
    storable_type(resource_type)
    require_scope(ctx.caller, "s", resource_type)
    in_patient_compartment = resource_type in registry().compartment or resource_type == "Patient"
    if compartment is not None and not in_patient_compartment:
        raise BadRequest(f"{resource_type} is not in the Patient compartment")
    query = parse(resource_type, params)
    request = read_request(ctx, resource_type, params)
    warnings = _warnings(ctx, [query])
    if compartment is None and in_patient_compartment:
        # A person sees only their own records: their compartments are the index to use.
        compartment = await own_compartment(ctx)
    if not query.clauses and compartment is None and _newest_first(request):
        return await _newest(ctx, resource_type, request, path or resource_type, warnings)
    extra = [plan.compartment(resource_type, compartment)] if compartment is not None else []
    found = await engine.find(ctx, query, extra)
    if compartment is not None:
        found = [s for s in found if compartment_contains(s.doc, compartment)]
    return await respond(ctx, request, found, path or resource_type, warnings)


async def own_compartment(ctx: Context) -> list[str] | None:
    """Return the Patient ids of a patient caller's own person (None for other callers)."""
    if ctx.caller.role != Role.PATIENT or not ctx.caller.patient or ctx.access is None:
        return None
    person = await ctx.access.persons.of_national_id(ctx.caller.patient)
    return list(person.patients) if person else []


def _newest_first(request: Request) -> bool:
    """Tell whether a search asks for nothing but a type's resources, newest first or in no
    order: the type-time index then serves it a page at a time."""
    sort = request.sort
    plain = not sort or (len(sort) == 1 and sort[0].param.special == "lastUpdated")
    return plain and (not sort or sort[0].descending) and request.before is None


async def _newest(
    ctx: Context, resource_type: str, request: Request, path: str, warnings: list[Issue]
) -> Result:
    """Answer a search without criteria: the type's resources newest first.

    Matching every resource of a type, it is read a page at a time by time windows, as type
    history is, instead of whole; a total is counted only on request (`_total=accurate`).
    """
    extra: dict[str, Any] = {}
    if request.total == "accurate" or request.summary == "count":
        query = {"resourceType": resource_type, "_hub.del": {"$exists": False}}
        extra["total"] = len(await ctx.store.find(query, ctx.scope, ctx.session, {"_id": 1}))
    self_url = page_url(ctx, path, request.params)
    if request.summary == "count":
        return Result(200, new_bundle("searchset", [], **extra, link=[_link("self", self_url)]))
    last = _newest_cursor(request.after) if request.after is not None else None
    found = await ctx.store.type_history(
        resource_type, ctx.scope, None, last, request.count + 1, ctx.session, current_only=True
    )
    shown = found[: request.count]
    entries = await _entries(ctx, request, shown, warnings)
    links = [_link("self", self_url)]
    if len(found) > request.count:
        row = [shown[-1].timestamp.isoformat(), shown[-1].doc["_id"]]
        links.append(_link("next", page_url(ctx, path, request.params, "_after", row)))
    return Result(200, new_bundle("searchset", entries, **extra, link=links))


def _newest_cursor(row: list[Any]) -> tuple[datetime, str]:
    """Read the (time, key) of the last resource a newest-first page showed."""
    try:
        return datetime.fromisoformat(row[0]), str(row[1])
    except (ValueError, TypeError, IndexError):
        raise BadRequest(
            "_after is not a page cursor of this search", expression="_after"
        ) from None


async def search_system(ctx: Context, params: list[tuple[str, str]]) -> Result:
    """Return a page of resources of the types in `_type` (or all searchable types)."""
    named = type_list(_last(params, "_type"))
    for resource_type in named:
        require_scope(ctx.caller, "s", resource_type)
    # Without `_type`, the types the caller may search; none of them is a 403.
    types = named or [t for t in sorted(registry().by_type) if ctx.caller.allows("s", t)]
    if not types:
        require_scope(ctx.caller, "s", "*")
    queries = [parse(t, params) for t in types]
    # A parameter is known at system level only if every searched type knows it.
    names_known_somewhere = {c.name for q in queries for c in q.clauses}
    for q in queries:
        q.unknown = [u for u in q.unknown if u.name not in names_known_somewhere] + [
            Unknown(n, f"Search parameter '{n}' is not defined on {q.resource_type}")
            for n in sorted(names_known_somewhere - {c.name for c in q.clauses})
        ]
    request = read_request(ctx, types[0] if len(types) == 1 else None, params)
    warnings = _warnings(ctx, queries)
    if not any(q.clauses for q in queries):
        raise TooCostly(
            "A search across resource types needs at least one search parameter; "
            "list one type's resources with GET /fhir/{type}"
        )
    found: list[Stored] = []
    for q in queries:
        if q.unknown:
            continue  # lenient: a type lacking a parameter cannot match it
        found += await engine.find(ctx, q)
    return await respond(ctx, request, found, "", warnings)


async def respond(
    ctx: Context, request: Request, found: list[Stored], path: str, warnings: list[Issue]
) -> Result:
    """Order, page, include and shape the matches into a searchset Bundle."""
    extra: dict[str, Any] = {}
    if request.total != "none":
        extra["total"] = len(found)
    self_url = page_url(ctx, path, request.params)
    if request.summary == "count":
        return Result(200, new_bundle("searchset", [], **extra, link=[_link("self", self_url)]))
    rows = page.order(found, request.sort)
    shown, has_previous, has_next = page.window(
        rows, request.sort, request.count, request.after, request.before
    )
    entries = await _entries(ctx, request, [stored for _, stored in shown], warnings)
    links = [_link("self", self_url)]
    if has_previous and shown:
        links.append(_link("previous", page_url(ctx, path, request.params, "_before", shown[0][0])))
    if has_next and shown:
        links.append(_link("next", page_url(ctx, path, request.params, "_after", shown[-1][0])))
    return Result(200, new_bundle("searchset", entries, **extra, link=links))


async def _entries(
    ctx: Context, request: Request, matches: list[Stored], warnings: list[Issue]
) -> list[dict[str, Any]]:
    """Return a page's entries: its matches, what they include, and the warnings."""
    includes = await included(ctx, matches, parse_includes(request.params))
    # What the token may not read stays out, as if it were not there.
    includes = [s for s in includes if ctx.caller.allows("r", s.resource_type)]
    entries = [_entry(ctx, s, "match", request) for s in matches]
    entries += [_entry(ctx, s, "include", request) for s in includes]
    if warnings:
        entries.append({"resource": operation_outcome(warnings), "search": {"mode": "outcome"}})
    return entries


def _entry(ctx: Context, stored: Stored, mode: str, request: Request) -> dict[str, Any]:
    return search_entry(
        ctx, stored, mode, shape(stored.resource, request.summary, request.elements)
    )


def _link(relation: str, url: str) -> dict[str, str]:
    return {"relation": relation, "url": url}


def page_url(
    ctx: Context,
    path: str,
    params: list[tuple[str, str]],
    cursor_name: str | None = None,
    row: list[Any] | None = None,
) -> str:
    """Return the URL of a search page: the query without cursors, plus the given cursor."""
    kept = [(k, v) for k, v in params if k not in _CURSORS]
    if cursor_name and row is not None:
        kept.append((cursor_name, page.cursor(row)))
    base = f"{ctx.base}/{path}" if path else ctx.base
    return f"{base}?{urlencode(kept)}" if kept else base
