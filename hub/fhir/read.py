"""FHIR read and vread interactions. https://hl7.org/fhir/R4/http.html#read"""

from hub.auth.deps import require_scope
from hub.fhir.outcome import Gone, NotFound
from hub.fhir.result import Context, Result, etag
from hub.fhir.validate import storable_type


async def read(ctx: Context, resource_type: str, resource_id: str) -> Result:
    """Return the current version of a resource; 410 if deleted, 404 if it never existed."""
    storable_type(resource_type)
    require_scope(ctx.caller, "r", resource_type)
    stored = await ctx.store.current(resource_type, resource_id, ctx.scope, ctx.session)
    if stored is None:
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    if stored.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted", headers={"ETag": etag(stored)})
    return Result(200, stored.resource, stored)


async def vread(ctx: Context, resource_type: str, resource_id: str, version: str) -> Result:
    """Return one version of a resource. https://hl7.org/fhir/R4/http.html#vread"""
    storable_type(resource_type)
    require_scope(ctx.caller, "r", resource_type)
    stored = None
    if version.isascii() and version.isdigit():
        stored = await ctx.store.version(
            resource_type, resource_id, int(version), ctx.scope, ctx.session
        )
    if stored is None:
        raise NotFound(f"{resource_type}/{resource_id} has no version {version}")
    if stored.deleted:
        raise Gone(f"Version {version} of {resource_type}/{resource_id} is its deletion")
    return Result(200, stored.resource, stored)
