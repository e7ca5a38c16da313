"""FastAPI dependencies: the caller from `Authorization: Bearer`, and scope checks.

    @router.get("/{resource_type}/{resource_id}", dependencies=[Depends(require("r"))])
    async def read(..., caller: CurrentCaller) -> ...

Every route of the FHIR router depends on `authenticate`, so `auth_required` is one switch.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth.caller import UNRESTRICTED_CALLER, Caller
from hub.auth.roles import Role
from hub.auth.tokens import TokenError
from hub.fhir.outcome import Forbidden, Unauthorized

TOKEN_HINT = "get one at /auth/token (systems) or /auth/login (people)"
# Declares the bearer scheme in the OpenAPI document (the Authorize button of /docs); the
# header itself is read below, to answer each kind of bad header precisely.
_documented = HTTPBearer(auto_error=False, description=f"An access token: {TOKEN_HINT}")


async def authenticate(
    request: Request,
    documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_documented)],
) -> Caller:
    """Return the caller of a request from its bearer token (401 when missing or refused);
    without a token, the unrestricted caller while the hub does not require tokens."""
    header = request.headers.get("authorization")
    if header is None:
        if request.app.state.settings.auth_required:
            raise Unauthorized(f"This request needs a bearer token: {TOKEN_HINT}", error=None)
        caller = UNRESTRICTED_CALLER
    else:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "The Authorization header must be 'Bearer <token>'", error="invalid_request"
            )
        try:
            caller = await request.app.state.auth.tokens.verify(token.strip())
        except TokenError as error:
            raise Unauthorized(str(error)) from None
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(authenticate)]


def require_scope(caller: Caller, letter: str, resource_type: str) -> None:
    """Raise 403 unless the caller's scopes allow one interaction (c r u d s) on a type."""
    if caller.allows(letter, resource_type):
        return
    context = {"patient": "patient", "facility": "system", "admin": "system"}.get(
        str(caller.role), "user"
    )
    needed = f"{context}/{resource_type}.{letter}"
    raise Forbidden(
        f"The token's scopes ({caller.scopes or 'none'}) do not allow this on "
        f"{resource_type}: it needs {needed}",
        scope=needed,
    )


def require(
    letter: str, resource_type: str | None = None
) -> Callable[[Request, Caller], Awaitable[Caller]]:
    """Return a dependency that answers 403 unless the caller may do `letter` on the type:
    the one given, or the route's `{resource_type}`."""

    async def check(request: Request, caller: CurrentCaller) -> Caller:
        wanted = resource_type or request.path_params.get("resource_type", "")
        require_scope(caller, letter, wanted)
        return caller

    return check


def require_role(*roles: Role, doing: str) -> Callable[[Caller], Awaitable[Caller]]:
    """Return a dependency that answers 403 unless the caller has one of these roles (401
    without a token; the unrestricted caller of a hub that does not require tokens passes)."""

    async def check(caller: CurrentCaller) -> Caller:
        if caller.authenticated and caller.role not in roles:
            allowed = " or ".join(str(r) for r in roles)
            raise Forbidden(f"Only the {allowed} role may {doing}, not {caller.role}")
        return caller

    return check
