"""The OAuth2 endpoints: /auth/token, /auth/login and SMART's discovery document.
https://hl7.org/fhir/smart-app-launch/conformance.html
"""

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from hub.audit.declaration import record_declaration
from hub.audit.review import router as review_router
from hub.auth.assertions import ALGORITHMS
from hub.auth.deps import CurrentCaller
from hub.auth.scopes import ROLE_SCOPES
from hub.auth.service import Authority, OAuthError
from hub.fhir.http import base_url, read_body
from hub.fhir.outcome import BadRequest, HubError

router = APIRouter(tags=["auth"])
# The break-the-glass review report (GET /audit/break-glass) is wired with the auth routes.
router.include_router(review_router)

TOKEN_PATH = "/auth/token"
LOGIN_PATH = "/auth/login"
BREAK_GLASS_PATH = "/auth/break-glass"
FORM = "application/x-www-form-urlencoded"
# RFC 6749 section 5.1: token responses must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_endpoint(request: Request) -> str:
    """Return the token endpoint's absolute URL (SMART assertions' aud), pinned as the FHIR
    base is: never from the request's Host header."""
    fhir_base = base_url(request, request.app.state.settings.public_base_url)
    return fhir_base.removesuffix("/fhir") + TOKEN_PATH


@router.post(TOKEN_PATH)
async def token(request: Request) -> JSONResponse:
    """Issue an access token for client credentials: client_secret_post or private_key_jwt."""
    try:
        form = await _form(request)
        authority: Authority = request.app.state.auth
        issued = await authority.client_credentials(form, token_endpoint(request))
    except OAuthError as error:
        return _error(error)
    return JSONResponse(issued.response(), headers=_NO_STORE)


@router.post(LOGIN_PATH)
async def login(request: Request) -> JSONResponse:
    """Issue an access token for a person's username and password."""
    try:
        form = await _form(request)
        authority: Authority = request.app.state.auth
        issued = await authority.login(form)
    except OAuthError as error:
        return _error(error)
    return JSONResponse(issued.response(), headers=_NO_STORE)


@router.post(BREAK_GLASS_PATH)
async def break_glass(request: Request, caller: CurrentCaller) -> JSONResponse:
    """Declare an emergency (break the glass): a clinician's bearer token and form fields
    `reason` and `patient` (both required) get an ETREAT token for that patient that lives
    break_glass_seconds. The declaration is in the audit trail before the token leaves."""
    try:
        try:
            form = await _form(request, empty_ok=True)
        except OAuthError as error:
            raise BadRequest(error.description) from None
        authority: Authority = request.app.state.auth
        issued, declaration = await authority.break_glass(caller, form)
    except HubError as error:
        if caller.authenticated:  # a refused declaration is worth reviewing too
            await record_declaration(request, caller, None, error.status)
        raise
    await record_declaration(request, caller, declaration, 200)
    return JSONResponse(issued.response(), headers=_NO_STORE)


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")  # where SMART clients look: the FHIR base's
async def smart_configuration(request: Request) -> JSONResponse:
    """Describe the authorization endpoints and capabilities, as SMART discovery does."""
    return JSONResponse(smart_configuration_document(token_endpoint(request)))


def smart_configuration_document(token_url: str) -> dict[str, Any]:
    """Return the SMART configuration for a hub whose token endpoint is `token_url`."""
    scopes = sorted({str(s) for role in ROLE_SCOPES.values() for s in role.items})
    return {
        "issuer": token_url.removesuffix(TOKEN_PATH),
        "token_endpoint": token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": scopes,
        "capabilities": [
            "client-confidential-symmetric",
            "client-confidential-asymmetric",
            "permission-v1",
            "permission-v2",
        ],
        # Not SMART's: where people using the hub's web pages log in.
        "login_endpoint": token_url.removesuffix(TOKEN_PATH) + LOGIN_PATH,
    }


async def _form(request: Request, empty_ok: bool = False) -> dict[str, str]:
    """Read an OAuth2 form body (refused unread over max_body_bytes: these endpoints answer
    anyone); a parameter may be given once only (RFC 6749 section 3.2). With `empty_ok`, no
    body at all is an empty form."""
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if empty_ok and not body:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM}")
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace")):
        if name in form:
            raise OAuthError("invalid_request", f"the parameter {name} is given twice")
        form[name] = value
    return form


def _error(error: OAuthError) -> JSONResponse:
    body = {"error": error.error, "error_description": error.description}
    return JSONResponse(body, status_code=error.status, headers=_NO_STORE)
