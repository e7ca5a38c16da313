"""FHIR delete interaction. https://hl7.org/fhir/R4/http.html#delete"""

from hub.fhir.entry import Entry
from hub.fhir.result import Context, Result
from hub.fhir.writes import commit


async def delete(ctx: Context, url: str, if_match: str | None) -> Result:
    """Delete the resource at `url`; later reads answer 410. Deleting twice is not an error."""
    [result] = await commit(ctx, [Entry("DELETE", url, "", if_match=if_match)])
    return result
