"""FHIR history interactions, instance and type level. https://hl7.org/fhir/R4/http.html#history"""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from hub.auth.deps import require_scope
from hub.fhir.bundle import full_url, links, new_bundle, status_line
from hub.fhir.outcome import BadRequest, NotFound
from hub.fhir.params import page_size, parse_instant
from hub.fhir.result import Context, Result, etag
from hub.fhir.validate import storable_type
from hub.store.resources import Stored, instant

_STATUS = {"POST": 201, "PUT": 200, "DELETE": 204}


def history_entry(ctx: Context, stored: Stored) -> dict[str, Any]:
    """Return one entry of a history Bundle."""
    method = stored.method
    url = stored.resource_type if method == "POST" else f"{stored.resource_type}/{stored.id}"
    entry: dict[str, Any] = {"fullUrl": full_url(ctx, stored)}
    if not stored.deleted:
        entry["resource"] = stored.resource
    entry["request"] = {"method": method, "url": url}
    entry["response"] = {
        "status": status_line(_STATUS.get(method, 200)),
        "etag": etag(stored),
        "lastModified": stored.last_updated,
    }
    return entry


async def instance_history(
    ctx: Context, resource_type: str, resource_id: str, params: dict[str, str]
) -> Result:
    """Return the versions of one resource, newest first, a page at a time."""
    storable_type(resource_type)
    require_scope(ctx.caller, "r", resource_type)
    count = page_size(ctx, params)
    since = parse_instant(params["_since"], "_since") if "_since" in params else None
    below = params.get("_below")
    found = await ctx.store.instance_history(
        resource_type,
        resource_id,
        ctx.scope,
        int(below) if below and below.isascii() and below.isdigit() and len(below) < 10 else None,
        count + 1,
        ctx.session,
    )
    if not found and below is None:
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    if since is not None:
        found = [s for s in found if s.timestamp >= since]
    page, more = found[:count], len(found) > count
    url = f"{ctx.base}/{resource_type}/{resource_id}/_history"
    kept: dict[str, str | int] = {
        k: params[k] for k in ("_count", "_since", "_below") if k in params
    }
    self_url = f"{url}?{urlencode(kept)}" if kept else url
    next_url = None
    if more:
        next_url = f"{url}?{urlencode({**kept, '_count': count, '_below': page[-1].version})}"
    entries = [history_entry(ctx, s) for s in page]
    return Result(200, new_bundle("history", entries, link=links(self_url, next_url)))


async def type_history(ctx: Context, resource_type: str, params: dict[str, str]) -> Result:
    """Return the versions of all resources of a type, newest first, a page at a time."""
    storable_type(resource_type)
    require_scope(ctx.caller, "s", resource_type)
    count = page_size(ctx, params)
    since = parse_instant(params["_since"], "_since") if "_since" in params else None
    after = parse_cursor(params["_cursor"]) if "_cursor" in params else None
    found = await ctx.store.type_history(
        resource_type, ctx.scope, since, after, count + 1, ctx.session
    )
    page, more = found[:count], len(found) > count
    url = f"{ctx.base}/{resource_type}/_history"
    kept: dict[str, str | int] = {
        k: params[k] for k in ("_count", "_since", "_cursor") if k in params
    }
    self_url = f"{url}?{urlencode(kept)}" if kept else url
    next_url = None
    if more:
        last = page[-1]
        cursor = f"{instant(last.timestamp)}~{last.doc['_id']}"
        next_url = f"{url}?{urlencode({**kept, '_count': count, '_cursor': cursor})}"
    return Result(
        200,
        new_bundle(
            "history", [history_entry(ctx, s) for s in page], link=links(self_url, next_url)
        ),
    )


def parse_cursor(value: str) -> tuple[datetime, str]:
    """Parse the `_cursor` of a next link: the time and key of the last version shown."""
    at, sep, last_key = value.partition("~")
    if not sep or not last_key:
        raise BadRequest("_cursor is not one this server handed out", expression="_cursor")
    return parse_instant(at, "_cursor"), last_key
