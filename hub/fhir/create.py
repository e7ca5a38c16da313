"""FHIR create interaction, conditional with If-None-Exist. https://hl7.org/fhir/R4/http.html#create"""

from typing import Any

from hub.fhir.entry import Entry
from hub.fhir.result import Context, Result, with_preference
from hub.fhir.writes import commit


async def create(
    ctx: Context, resource_type: str, resource: Any, if_none_exist: str | None
) -> Result:
    """Store a new resource under a server-chosen id, unless If-None-Exist finds it."""
    entry = Entry("POST", resource_type, "", resource, if_none_exist=if_none_exist)
    [result] = await commit(ctx, [entry])
    return with_preference(ctx, result)
