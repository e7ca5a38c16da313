"""The bearer token on every request: 401 for a refused token, 403 for a missing scope, and
which endpoints stay open when tokens are required."""

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from auth.conftest import PROBE
from auth.helpers import bearer, challenge, register, token_for
from support import FHIR_JSON, hub_client, patient

from hub.app import create_app
from hub.settings import Settings


async def crafted(app: Any, identity: Any, **claims: Any) -> str:
    """Sign a token with the hub's real key, with claims changed from a normal token's."""
    now = int(time.time())
    payload = {
        "iss": "ehrhub",
        "sub": identity.client_id,
        "aud": "ehrhub",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "system/*.cruds",
        "role": str(identity.role),
    } | claims
    key = app.state.auth.tokens.keys.signing()
    return jwt.encode(payload, key.secret, algorithm="HS256", headers={"kid": key.kid})


def tampered(token: str, **changes: Any) -> str:
    """Return the token with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(claims | changes).encode()).rstrip(b"=")
    return f"{header}.{forged.decode()}.{signature}"


def invalid_token(response: httpx.Response, says: str) -> None:
    """Check a 401 invalid_token answer: OperationOutcome body and the RFC 6750 challenge."""
    assert response.status_code == 401, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    assert says in outcome["issue"][0]["diagnostics"]
    header = challenge(response)
    assert header.startswith("Bearer ") and 'error="invalid_token"' in header
    assert "error_description=" in header


async def test_a_valid_token_reads(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, secret = await register(secured_app, "facility")
    token = await token_for(secured, identity, secret)

    response = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    assert response.status_code == 200, response.text


async def test_expired(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    now = int(time.time())
    token = await crafted(secured_app, identity, iat=now - 600, exp=now - 300)

    response = await secured.get("/fhir/Patient", headers=bearer(token))

    invalid_token(response, "expired")


async def test_tampered_payload(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, secret = await register(secured_app, "clinician")
    token = await token_for(secured, identity, secret)

    forged = tampered(token, scope="system/*.cruds", role="facility")
    response = await secured.get("/fhir/Patient", headers=bearer(forged))

    invalid_token(response, "signature")


async def test_signed_with_another_key(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    token = jwt.encode(
        {"sub": identity.client_id, "aud": "ehrhub", "exp": int(time.time()) + 60},
        b"not the hub's key, but long enough for HS256 to accept it",
        algorithm="HS256",
    )

    response = await secured.get("/fhir/Patient", headers=bearer(token))

    invalid_token(response, "signature")


async def test_wrong_audience(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    token = await crafted(secured_app, identity, aud="https://another-hub.example/fhir")

    response = await secured.get("/fhir/Patient", headers=bearer(token))

    invalid_token(response, "not meant for this hub")


async def test_unsigned_token(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, secret = await register(secured_app, "facility")
    token = await token_for(secured, identity, secret)
    header, payload, _ = token.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()

    for forged in (f"{none_header}.{payload}.", f"{header}.{payload}."):
        response = await secured.get("/fhir/Patient", headers=bearer(forged))
        assert response.status_code == 401, forged


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30.e30.e30"])
async def test_malformed(secured: httpx.AsyncClient, token: str) -> None:
    response = await secured.get("/fhir/Patient", headers=bearer(token))

    invalid_token(response, "")


async def test_a_token_missing_a_claim(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    token = await crafted(secured_app, identity, role=None)
    payload = jwt.decode(token, options={"verify_signature": False})
    payload.pop("role")
    key = secured_app.state.auth.tokens.keys.signing()
    unsigned = jwt.encode(payload, key.secret, algorithm="HS256", headers={"kid": key.kid})

    response = await secured.get("/fhir/Patient", headers=bearer(unsigned))

    invalid_token(response, "'role'")


async def test_revoked_after_issue_stops_at_once(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "facility")
    token = await token_for(secured, identity, secret)
    before = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    await secured_app.state.auth.identities.revoke(identity.client_id)
    after = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    assert before.status_code == 200
    invalid_token(after, "revoked")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc"])
async def test_not_a_bearer_header(secured: httpx.AsyncClient, header: str) -> None:
    response = await secured.get("/fhir/Patient", headers={"authorization": header})

    assert response.status_code == 401
    assert 'error="invalid_request"' in challenge(response)


async def test_missing_scope_is_403(secured_app: Any, secured: httpx.AsyncClient) -> None:
    auditor, auditor_secret = await register(secured_app, "auditor")
    clinician, clinician_secret = await register(secured_app, "clinician")
    narrow = await token_for(secured, clinician, clinician_secret, scope="user/Observation.rs")

    denied = await secured.get(
        PROBE, headers=bearer(await token_for(secured, auditor, auditor_secret))
    )
    also_denied = await secured.get(PROBE, headers=bearer(narrow))
    allowed = await secured.get(
        PROBE, headers=bearer(await token_for(secured, clinician, clinician_secret))
    )

    for response in (denied, also_denied):
        assert response.status_code == 403, response.text
        outcome = response.json()
        assert outcome["issue"][0]["code"] == "forbidden"
        assert "user/Patient.r" in outcome["issue"][0]["diagnostics"]
        assert 'error="insufficient_scope"' in challenge(response)
    assert allowed.status_code == 200, allowed.text


async def test_required_tokens_close_the_fhir_routes(
    secured: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    assert created.status_code == 201
    path = f"/fhir/Patient/{created.json()['id']}"

    for method, url in [
        ("GET", path),
        ("GET", f"{path}/_history"),
        ("GET", "/fhir/Patient"),
        ("GET", "/fhir"),
        ("POST", "/fhir"),
        ("PUT", path),
        ("DELETE", path),
        ("GET", f"{path}/$everything"),
        ("GET", "/fhir/Patient/_history"),
    ]:
        response = await secured.request(method, url)
        assert response.status_code == 401, (method, url, response.text)
        assert challenge(response) == 'Bearer realm="ehrhub"'
        assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/metadata",
        "/healthz",
        "/readyz",
        "/.well-known/smart-configuration",
        "/openapi.json",
        "/docs",
    ],
)
async def test_open_endpoints(secured: httpx.AsyncClient, path: str) -> None:
    response = await secured.get(path)

    assert response.status_code == 200, response.text


async def test_token_and_login_need_no_token(secured: httpx.AsyncClient) -> None:
    token = await secured.post("/auth/token", data={"grant_type": "client_credentials"})
    login = await secured.post("/auth/login", data={"username": "x", "password": "y"})

    assert token.status_code == 401 and token.json()["error"] == "invalid_client"
    assert login.status_code == 400 and login.json()["error"] == "invalid_grant"


def test_tokens_are_required_by_default() -> None:
    assert Settings.model_fields["auth_required"].default is True


async def test_switched_off_a_call_without_a_token_passes_and_a_given_one_is_checked(
    app: Any, settings: Settings
) -> None:
    identity, secret = await register(app, "facility")
    open_app = create_app(settings.model_copy(update={"auth_required": False}))
    async with open_app.router.lifespan_context(open_app), hub_client(open_app) as client:
        token = await token_for(client, identity, secret)

        without = await client.get("/fhir/Patient", params={"_count": "1"})
        good = await client.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))
        bad = await client.get("/fhir/Patient", headers=bearer(tampered(token, fac="OTHER")))

    assert without.status_code == 200
    assert good.status_code == 200
    invalid_token(bad, "signature")


async def test_metadata_advertises_the_token_endpoint(secured: httpx.AsyncClient) -> None:
    statement = (await secured.get("/fhir/metadata")).json()

    security = statement["rest"][0]["security"]
    coding = security["service"][0]["coding"][0]
    assert coding == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR",
        "display": "SMART-on-FHIR",
    }
    uris = security["extension"][0]
    assert uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["extension"] == [{"url": "token", "valueUri": "http://hub.test/auth/token"}]


async def test_smart_configuration(secured: httpx.AsyncClient) -> None:
    configuration = (await secured.get("/.well-known/smart-configuration")).json()

    assert configuration["token_endpoint"] == "http://hub.test/auth/token"
    assert configuration["grant_types_supported"] == ["client_credentials"]
    assert configuration["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "private_key_jwt",
    ]
    assert configuration["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "system/*.cruds" in configuration["scopes_supported"]
    assert "permission-v2" in configuration["capabilities"]


async def test_every_hub_process_on_one_database_accepts_the_others_tokens(
    app: Any, client: httpx.AsyncClient, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(app, "facility")
    token = await token_for(client, identity, secret)

    response = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    assert response.status_code == 200, response.text
