"""FHIR search interaction, for now on `_id` and `identifier` only.
https://hl7.org/fhir/R4/search.html
"""

from urllib.parse import urlencode

from hub.fhir import conditional
from hub.fhir.bundle import full_url, links, new_bundle
from hub.fhir.outcome import BadRequest
from hub.fhir.params import page_size
from hub.fhir.result import Context, Result
from hub.fhir.validate import storable_type

# Parameters about the result rather than the match.
_CONTROL = {"_count", "_format", "_pretty"}


async def search_type(ctx: Context, resource_type: str, params: list[tuple[str, str]]) -> Result:
    """Return the resources of a type matching `_id` and `identifier` criteria."""
    storable_type(resource_type)
    criteria_params = [(k, v) for k, v in params if k not in _CONTROL]
    if not criteria_params:
        raise BadRequest(
            "Search needs _id or identifier criteria here; "
            f"use {resource_type}/_history to list all resources of a type",
        )
    count = page_size(ctx, dict(params))
    criteria = conditional.parse_criteria(resource_type, urlencode(criteria_params), "search")
    found = await conditional.find(ctx, criteria, limit=count + 1)
    self_url = f"{ctx.base}/{resource_type}?{urlencode(params)}"
    entries = [
        {"fullUrl": full_url(ctx, s), "resource": s.resource, "search": {"mode": "match"}}
        for s in found[:count]
    ]
    # Paging arrives with the search issue; until then a total is given only when it is known.
    extra = {"total": len(entries)} if len(found) <= count else {}
    return Result(200, new_bundle("searchset", entries, **extra, link=links(self_url, None)))
