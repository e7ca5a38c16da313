"""Helpers of the auth tests: register identities, ask for tokens, read the challenge."""

from typing import Any

import httpx
import jwt

from hub.auth.identities import Identity, new_identity
from hub.auth.roles import Role

TOKEN = "/auth/token"
LOGIN = "/auth/login"
BREAK_GLASS = "/auth/break-glass"
TOKEN_URL = "http://hub.test/auth/token"


async def register(app: Any, role: str, **fields: Any) -> tuple[Identity, str]:
    """Store a new identity through the app's repository; return it with its secret."""
    if role in ("facility", "clinician"):
        fields.setdefault("facility", "F-TEST")
    if role == "patient":
        fields.setdefault("patient", "001085012345")
    identity, secret = new_identity(Role(role), **fields)
    await app.state.auth.identities.create(identity)
    return identity, secret


async def ask_token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    """Post a client_credentials token request (grant_type filled in unless given)."""
    form.setdefault("grant_type", "client_credentials")
    return await client.post(TOKEN, data=form)


async def token_for(client: httpx.AsyncClient, identity: Identity, secret: str, **form: str) -> str:
    """Return an access token for an identity, checking the request succeeded."""
    response = await ask_token(client, client_id=identity.client_id, client_secret=secret, **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header carrying a token."""
    return {"authorization": f"Bearer {token}"}


def challenge(response: httpx.Response) -> str:
    """Return the WWW-Authenticate header, failing if there is none."""
    value = response.headers.get("www-authenticate")
    assert value is not None, f"no WWW-Authenticate on {response.status_code}: {response.text}"
    return value


def claims_of(token: str) -> dict[str, Any]:
    """Read a token's claims without checking it: the hub verifies, a test only reads."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


def declare(client: httpx.AsyncClient, token: str | None, **form: str) -> Any:
    """Post a break-the-glass declaration with a bearer token (none if None)."""
    headers = bearer(token) if token else {}
    return client.post(BREAK_GLASS, data=form, headers=headers)


async def emergency_token(
    client: httpx.AsyncClient, token: str, reason: str, patient: str = "Patient/in-emergency"
) -> str:
    """Declare an emergency about a patient with an ordinary token; return the
    break-the-glass token."""
    declared = await declare(client, token, reason=reason, patient=patient)
    assert declared.status_code == 200, declared.text
    return str(declared.json()["access_token"])
