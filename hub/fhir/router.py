"""The FHIR REST surface at /fhir: HTTP in, interactions, HTTP out."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.audit import search as audit
from hub.auth.caller import UNRESTRICTED_CALLER
from hub.auth.deps import authenticate, require_scope
from hub.fhir import (
    create,
    delete,
    everything,
    history,
    profiling,
    read,
    search,
    transaction,
    update,
)
from hub.fhir.capabilities import capability_statement
from hub.fhir.http import (
    base_url,
    check_format,
    form_params,
    json_response,
    prefer,
    read_json,
    result_response,
)
from hub.fhir.outcome import MethodNotAllowed, NotFound
from hub.fhir.result import Context
from hub.fhir.validate import storable_type

router = APIRouter(tags=["FHIR R4"])
# Every route but the CapabilityStatement: here the bearer token is read, and demanded when
# `auth_required` is on. Included into `router` at the end of this module.
protected = APIRouter(prefix="/fhir", dependencies=[Depends(authenticate)])

_RETURN = {"minimal", "representation", "OperationOutcome"}


async def context(request: Request) -> Context:
    """Build the interaction context of one request."""
    check_format(request)
    state = request.app.state
    wanted = prefer(request, "return")
    return Context(
        store=state.store,
        settings=state.settings,
        scope=await state.scope_of(request),
        base=base_url(request, state.settings.public_base_url),
        prefer_return=wanted if wanted in _RETURN else "representation",
        strict=prefer(request, "handling") == "strict",
        # Set by `authenticate`, which runs first on every protected route.
        caller=getattr(request.state, "caller", UNRESTRICTED_CALLER),
        audit=getattr(request.state, "audit", None),
        audit_trail=state.audit,
        counters=state.counters,
        access=state.access,
    )


Ctx = Annotated[Context, Depends(context)]


async def same_person(ctx: Context, patient_id: str) -> list[str]:
    """Return the ids of every Patient record of the patient's person, the patient's first."""
    assert ctx.access is not None, "the router's context carries the access control"
    return await ctx.access.persons.same_person(patient_id)


def _url(resource_type: str, request: Request) -> str:
    query = request.url.query
    return f"{resource_type}?{query}" if query else resource_type


@router.get("/fhir/metadata")
async def metadata(request: Request, ctx: Ctx) -> Response:
    """Return the CapabilityStatement."""
    started = request.app.state.started
    return json_response(capability_statement(ctx.base, started, ctx.settings.country))


@router.api_route(
    "/fhir/metadata", methods=["POST", "PUT", "DELETE", "PATCH"], include_in_schema=False
)
async def metadata_write(request: Request) -> Response:
    """Refuse anything but GET on the CapabilityStatement."""
    raise MethodNotAllowed(f"{request.method} is not supported on /fhir/metadata")


# The audit trail, served from its own collection; only the hub writes it.
@protected.get("/AuditEvent")
async def audit_search(request: Request, ctx: Ctx) -> Response:
    """Search the audit trail."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await audit.search(ctx, params))


@protected.post("/AuditEvent/_search")
async def audit_search_post(request: Request, ctx: Ctx) -> Response:
    """Search the audit trail with the parameters in a form body (and the query string)."""
    params = list(request.query_params.multi_items()) + await form_params(request)
    return result_response(ctx, await audit.search(ctx, params))


@protected.get("/AuditEvent/_history")
async def audit_history(request: Request, ctx: Ctx) -> Response:
    """Return the audit trail's history: its events, each created once."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await audit.history(ctx, params))


@protected.get("/AuditEvent/{event_id}")
async def audit_read(event_id: str, ctx: Ctx) -> Response:
    """Read one AuditEvent."""
    return result_response(ctx, await audit.read(ctx, event_id))


@protected.api_route(
    "/AuditEvent", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
@protected.api_route(
    "/AuditEvent/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def audit_refuse(request: Request) -> Response:
    """Refuse every write to the audit trail, and every other interaction on it."""
    raise MethodNotAllowed(
        f"{request.method} is not supported on {request.url.path}: the audit trail is "
        "append-only and written by the hub alone; search it with GET /fhir/AuditEvent"
    )


@protected.post("")
async def bundle(request: Request, ctx: Ctx) -> Response:
    """Process a transaction or batch Bundle."""
    body = await read_json(request, ctx.settings.max_body_bytes)
    if ctx.audit is not None and isinstance(body, dict) and body.get("type") == "batch":
        ctx.audit.bundle_type = "batch"
    explicit = prefer(request, "return") == "representation"
    result = await transaction.process_bundle(ctx, body, explicit)
    if ctx.audit is not None:
        ctx.audit.written(body)  # its references now resolved: the patients written to
    return result_response(ctx, result)


@protected.post("/$validate")
async def validate_system(request: Request, ctx: Ctx) -> Response:
    """Validate a resource against the FHIR R4 base model and a national profile (the
    `profile` parameter, else the country pack's profile of its type); store nothing."""
    body = await read_json(request, ctx.settings.max_body_bytes)
    profile = request.query_params.get("profile")
    return json_response(profiling.validate_operation(ctx, None, body, profile))


@protected.post("/{resource_type}/$validate")
async def validate_type(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Validate a resource of a type against the base model and the national profile."""
    storable_type(resource_type)
    body = await read_json(request, ctx.settings.max_body_bytes)
    profile = request.query_params.get("profile")
    return json_response(profiling.validate_operation(ctx, resource_type, body, profile))


@protected.get("")
async def search_system(request: Request, ctx: Ctx) -> Response:
    """Search across resource types (`_type`)."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await search.search_system(ctx, params))


@protected.post("/{resource_type}/_search")
async def search_post(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Search with the parameters in a form body (and the query string)."""
    params = list(request.query_params.multi_items()) + await form_params(request)
    return result_response(ctx, await search.search_type(ctx, resource_type, params))


@protected.get("/Patient/{patient_id}/$everything")
async def patient_everything(patient_id: str, request: Request, ctx: Ctx) -> Response:
    """Return everything about a patient, across the facilities holding the person's records."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await everything.everything(ctx, patient_id, params))


@protected.get("/Patient/$everything")
async def own_everything(request: Request, ctx: Ctx) -> Response:
    """Return a person's whole record (a patient's own token): everything of theirs at every
    facility, in as few pages as the hub serves."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await everything.own_everything(ctx, params))


@protected.get("/{resource_type}/_history")
async def type_history(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Return the history of all resources of a type."""
    return result_response(
        ctx, await history.type_history(ctx, resource_type, dict(request.query_params))
    )


@protected.get("/{resource_type}/{resource_id}/_history")
async def instance_history(
    resource_type: str, resource_id: str, request: Request, ctx: Ctx
) -> Response:
    """Return the history of one resource."""
    params = dict(request.query_params)
    return result_response(
        ctx, await history.instance_history(ctx, resource_type, resource_id, params)
    )


@protected.get("/{resource_type}/{resource_id}/{compartment_type}")
async def search_compartment(
    resource_type: str, resource_id: str, compartment_type: str, request: Request, ctx: Ctx
) -> Response:
    """Search one patient's compartment: `Patient/{id}/{type}?...`."""
    if resource_type != "Patient":
        raise NotFound(f"Compartment search is offered on Patient, not {resource_type}")
    # Refused before the Patient is looked up: a 404 would tell that it does not exist.
    require_scope(ctx.caller, "s", compartment_type)
    patient = await ctx.store.current("Patient", resource_id, ctx.scope)
    if patient is None or patient.deleted:
        raise NotFound(f"Patient/{resource_id} is not known")
    patients = await same_person(ctx, patient.id)
    params = list(request.query_params.multi_items())
    path = f"Patient/{resource_id}/{compartment_type}"
    result = await search.search_type(ctx, compartment_type, params, patients, path)
    return result_response(ctx, result)


@protected.get("/{resource_type}/{resource_id}/_history/{version}")
async def vread(resource_type: str, resource_id: str, version: str, ctx: Ctx) -> Response:
    """Return one version of a resource."""
    return result_response(ctx, await read.vread(ctx, resource_type, resource_id, version))


@protected.get("/{resource_type}")
async def search_type(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Search the resources of a type."""
    params = list(request.query_params.multi_items())
    return result_response(ctx, await search.search_type(ctx, resource_type, params))


@protected.post("/{resource_type}")
async def create_resource(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Create a resource."""
    storable_type(resource_type)
    body = await read_json(request, ctx.settings.max_body_bytes)
    result = await create.create(ctx, resource_type, body, request.headers.get("if-none-exist"))
    return result_response(ctx, result)


@protected.put("/{resource_type}")
async def conditional_update(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Update the one resource matching the query, or create it."""
    storable_type(resource_type)
    body = await read_json(request, ctx.settings.max_body_bytes)
    url = _url(resource_type, request)
    return result_response(
        ctx, await update.update(ctx, url, body, request.headers.get("if-match"))
    )


@protected.delete("/{resource_type}")
async def conditional_delete(resource_type: str, request: Request, ctx: Ctx) -> Response:
    """Delete the one resource matching the query."""
    storable_type(resource_type)
    url = _url(resource_type, request)
    return result_response(ctx, await delete.delete(ctx, url, request.headers.get("if-match")))


@protected.get("/{resource_type}/{resource_id}")
async def read_resource(resource_type: str, resource_id: str, ctx: Ctx) -> Response:
    """Read the current version of a resource."""
    return result_response(ctx, await read.read(ctx, resource_type, resource_id))


@protected.put("/{resource_type}/{resource_id}")
async def update_resource(
    resource_type: str, resource_id: str, request: Request, ctx: Ctx
) -> Response:
    """Update a resource, or create it with this id."""
    storable_type(resource_type)
    body = await read_json(request, ctx.settings.max_body_bytes)
    url = f"{resource_type}/{resource_id}"
    return result_response(
        ctx, await update.update(ctx, url, body, request.headers.get("if-match"))
    )


@protected.delete("/{resource_type}/{resource_id}")
async def delete_resource(
    resource_type: str, resource_id: str, request: Request, ctx: Ctx
) -> Response:
    """Delete a resource."""
    storable_type(resource_type)
    url = f"{resource_type}/{resource_id}"
    return result_response(ctx, await delete.delete(ctx, url, request.headers.get("if-match")))


router.include_router(protected)
