"""The admin endpoints: what `ehrhub admin` does, over HTTP, for callers with the admin role.

    GET  /admin/clients[?role=&facility=]   every client and person, never a secret or hash
    POST /admin/clients                     {"role": …, "facility": …, …}: the new client's id
                                            and secret (shown once), 201
    POST /admin/clients/{id}/revoke         no new token, and its tokens stop at once

Every call, allowed or refused, leaves an AuditEvent in the audit trail (see
hub/audit/middleware.py, which records /admin as it records /fhir).
"""

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from hub.auth.deps import require_role
from hub.auth.identities import Identities, IdentityError, new_identity
from hub.auth.roles import Role
from hub.fhir.http import read_json
from hub.fhir.outcome import BadRequest, Conflict, NotFound

# The fields of a new identity a request may give, as `ehrhub admin create-client` takes them.
_FIELDS = ("facility", "name", "username", "patient", "practitioner", "jwks", "password")
_NO_STORE = {"Cache-Control": "no-store"}
_MAX_BODY_BYTES = 64 * 1024


router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN, doing="manage clients"))],
)


def _identities(request: Request) -> Identities:
    identities: Identities = request.app.state.auth.identities
    return identities


@router.get("/clients")
async def list_clients(
    request: Request, role: str | None = None, facility: str | None = None
) -> JSONResponse:
    """List clients and people, oldest first, optionally of one role or facility."""
    found = await _identities(request).all()
    rows = [
        identity.public()
        for identity in found
        if (role is None or identity.role == role)
        and (facility is None or identity.facility == facility)
    ]
    return JSONResponse(rows, headers=_NO_STORE)


@router.post("/clients", status_code=201)
async def create_client(request: Request) -> JSONResponse:
    """Register a client or person; answer its client_id and client_secret, shown once."""
    body = await read_json(request, _MAX_BODY_BYTES)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object with at least a role")
    unknown = sorted(set(body) - {"role", *_FIELDS})
    if unknown:
        raise BadRequest(f"Unknown field {unknown[0]!r}: expected role and {', '.join(_FIELDS)}")
    role = body.get("role")
    if role not in tuple(Role):
        raise BadRequest(f"role must be one of {', '.join(Role)}, not {role!r}")
    given: dict[str, Any] = {name: body.get(name) for name in _FIELDS}
    for name, value in given.items():
        expected = dict if name == "jwks" else str
        if value is not None and not isinstance(value, expected):
            kind = "a JSON Web Key Set object" if name == "jwks" else "a string"
            raise BadRequest(f"{name} has the wrong type: expected {kind}")
    try:
        # Hashing the secret (argon2) takes a fifth of a second: off the event loop.
        identity, secret = await asyncio.to_thread(new_identity, Role(role), **given)
    except IdentityError as error:
        raise BadRequest(str(error)) from None
    try:
        await _identities(request).create(identity)
    except IdentityError as error:
        raise Conflict(str(error)) from None
    shown = {"client_id": identity.client_id, "client_secret": secret}
    return JSONResponse(
        shown | {k: v for k, v in identity.public().items() if k not in shown},
        status_code=201,
        headers=_NO_STORE,
    )


@router.post("/clients/{client_id}/revoke")
async def revoke_client(client_id: str, request: Request) -> JSONResponse:
    """Revoke a client or person: it gets no new token, and its tokens stop at once."""
    identity = await _identities(request).revoke(client_id)
    if identity is None:
        raise NotFound(f"No client has the id {client_id!r}")
    return JSONResponse(identity.public(), headers=_NO_STORE)
