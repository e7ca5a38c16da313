"""FHIR update interaction: by id (also update-as-create), conditional, version-aware.
https://hl7.org/fhir/R4/http.html#update
"""

from typing import Any

from hub.fhir.entry import Entry
from hub.fhir.result import Context, Result, with_preference
from hub.fhir.writes import commit


async def update(ctx: Context, url: str, resource: Any, if_match: str | None) -> Result:
    """Store a new version of the resource at `url` (Type/id or Type?criteria)."""
    entry = Entry("PUT", url, "", resource, if_match=if_match)
    [result] = await commit(ctx, [entry])
    return with_preference(ctx, result)
