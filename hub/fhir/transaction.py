"""FHIR transaction and batch interactions. https://hl7.org/fhir/R4/http.html#transaction"""

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from hub.access.named import named_in
from hub.fhir import history, read, search
from hub.fhir.attribution import check_claims
from hub.fhir.bundle import entry_response, new_bundle
from hub.fhir.entry import Entry, check, parse_url
from hub.fhir.outcome import BadRequest, HubError, NotFound, PayloadTooLarge
from hub.fhir.result import Context, Result
from hub.fhir.writes import Plan, commit, refuse_audit_event

_METHODS = {"GET", "POST", "PUT", "DELETE"}


def parse_entries(ctx: Context, bundle: dict[str, Any]) -> list[Entry]:
    """Turn a Bundle's entries into write requests, refusing malformed ones with their path."""
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise BadRequest("Bundle.entry must be an array", expression="Bundle.entry")
    if len(raw) > ctx.settings.max_bundle_entries:
        raise PayloadTooLarge(
            f"The bundle has {len(raw)} entries; the limit is {ctx.settings.max_bundle_entries}"
        )
    entries = []
    for i, item in enumerate(raw):
        path = f"Bundle.entry[{i}]"
        if not isinstance(item, dict):
            raise BadRequest("An entry must be a JSON object", expression=path)
        request = item.get("request")
        if not isinstance(request, dict):
            raise BadRequest("The entry has no request", expression=f"{path}.request")
        method, url = request.get("method"), request.get("url")
        if method not in _METHODS:
            raise BadRequest(
                f"request.method must be one of {', '.join(sorted(_METHODS))}, not {method!r}",
                expression=f"{path}.request.method",
            )
        if not isinstance(url, str) or not url:
            raise BadRequest("The entry has no request.url", expression=f"{path}.request.url")
        if url.startswith(ctx.base + "/"):
            url = url[len(ctx.base) + 1 :]
        resource = item.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise BadRequest("entry.resource must be a JSON object", expression=f"{path}.resource")
        full_url = item.get("fullUrl")
        for name in ("ifNoneExist", "ifMatch"):
            if name in request and not isinstance(request[name], str):
                raise BadRequest(
                    f"request.{name} must be a string", expression=f"{path}.request.{name}"
                )
        entries.append(
            Entry(
                method,
                url,
                path,
                resource,
                full_url=full_url if isinstance(full_url, str) else None,
                if_none_exist=request.get("ifNoneExist"),
                if_match=request.get("ifMatch"),
            )
        )
    return entries


async def get(ctx: Context, entry: Entry) -> Result:
    """Answer a GET entry: read, vread, history or search, seeing what the same request sent
    on its own would (the patients an entry names are its own)."""
    refuse_audit_event(entry)
    target = parse_url(entry.url, entry.where("request.url"))
    params = parse_qsl(target.query or "")
    if ctx.access is not None:
        path = {"resource_type": target.resource_type, "resource_id": target.id or ""}
        system = ctx.settings.national_id_system
        scope = await ctx.access.scope(ctx.caller, named_in(path, params, system))
        ctx = replace(ctx, scope=scope)
    if target.operation:
        raise NotFound(f"Operation {target.operation} is not supported")
    if target.id and target.version:
        return await read.vread(ctx, target.resource_type, target.id, target.version)
    if target.id and target.history:
        return await history.instance_history(ctx, target.resource_type, target.id, dict(params))
    if target.id:
        return await read.read(ctx, target.resource_type, target.id)
    if target.history:
        return await history.type_history(ctx, target.resource_type, dict(params))
    return await search.search_type(ctx, target.resource_type, params)


async def transaction(ctx: Context, entries: list[Entry], with_bodies: bool) -> dict[str, Any]:
    """Process all entries in one database transaction: all succeed, or nothing is written."""

    async def gets(inside: Context, plan: Plan) -> None:
        for i, entry in enumerate(entries):
            if entry.method == "GET":
                try:
                    plan.results[i] = await get(inside, entry)
                except HubError as error:
                    raise error.locate(entry.path) from None

    results = await commit(ctx, entries, after=gets)
    response = [
        entry_response(r, with_bodies or e.method == "GET")
        for r, e in zip(results, entries, strict=True)
    ]
    return new_bundle("transaction-response", response)


async def batch(ctx: Context, entries: list[Entry], with_bodies: bool) -> dict[str, Any]:
    """Process each entry on its own; each gets its own outcome."""
    response = []
    for entry in entries:
        try:
            if entry.method == "GET":
                result = await get(ctx, entry)
            else:
                [result] = await commit(ctx, [entry])
            response.append(entry_response(result, with_bodies or entry.method == "GET"))
        except HubError as error:
            response.append(entry_response(Result(error.status, error.outcome()), True))
    return new_bundle("batch-response", response)


def _refuse_claims(ctx: Context, entries: list[Entry]) -> None:
    """Refuse the whole Bundle, batch or transaction, if one entry claims another facility;
    a malformed entry is left for its own processing to refuse."""
    writes = []
    for entry in entries:
        if entry.method in ("POST", "PUT"):
            try:
                check(entry, ctx.settings.max_json_depth)
            except HubError:
                continue
            writes.append(entry)
    check_claims(ctx, writes)


async def process_bundle(ctx: Context, bundle: Any, with_bodies: bool) -> Result:
    """Answer `POST /fhir` with a transaction or batch Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base expects a Bundle of type transaction or batch")
    kind = bundle.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest(
            f"Bundle.type must be transaction or batch, not {kind!r}", expression="Bundle.type"
        )
    entries = parse_entries(ctx, bundle)
    _refuse_claims(ctx, entries)
    if kind == "transaction":
        return Result(200, await transaction(ctx, entries, with_bodies))
    return Result(200, await batch(ctx, entries, with_bodies))
