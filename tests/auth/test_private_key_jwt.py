"""SMART Backend Services: a client authenticates with a JWT signed by its own private key.
https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from auth.helpers import TOKEN_URL, ask_token, register
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hub.auth.identities import IdentityError, check_jwks

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def key_pair(algorithm: str) -> tuple[Any, dict[str, Any]]:
    """Return a new private key and its public JWK (with a kid) for RS384 or ES384."""
    private: Any
    if algorithm == "RS384":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    else:
        private = ec.generate_private_key(ec.SECP384R1())
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    return private, jwk | {"kid": uuid.uuid4().hex[:8], "alg": algorithm}


def assertion(
    private: Any, client_id: str, kid: str, algorithm: str = "ES384", **claims: Any
) -> str:
    """Sign a client assertion as a backend service does."""
    now = int(time.time())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    } | claims
    return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


async def ask(client: httpx.AsyncClient, signed: str, **form: str) -> httpx.Response:
    return await ask_token(
        client, client_assertion_type=ASSERTION_TYPE, client_assertion=signed, **form
    )


async def registered(app: Any, algorithm: str = "ES384") -> tuple[Any, Any, str]:
    """Register a facility system with one public key; return it, the private key and kid."""
    private, jwk = key_pair(algorithm)
    identity, _ = await register(app, "facility", jwks={"keys": [jwk]})
    return identity, private, jwk["kid"]


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
async def test_a_signed_assertion_gets_a_token(
    secured_app: Any, secured: httpx.AsyncClient, algorithm: str
) -> None:
    identity, private, kid = await registered(secured_app, algorithm)

    response = await ask(
        secured,
        assertion(private, identity.client_id, kid, algorithm),
        scope="system/Patient.rs",
    )

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "system/Patient.rs"
    token = response.json()["access_token"]
    read = await secured.get(
        "/fhir/Patient", params={"_count": "1"}, headers={"authorization": f"Bearer {token}"}
    )
    assert read.status_code == 200


async def test_a_replayed_assertion_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, private, kid = await registered(secured_app)
    signed = assertion(private, identity.client_id, kid)

    first = await ask(secured, signed)
    again = await ask(secured, signed)

    assert first.status_code == 200, first.text
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert "already used" in again.json()["error_description"]


async def test_used_assertions_expire_by_ttl_index(secured_app: Any) -> None:
    indexes = await secured_app.state.mongo.db["used_assertions"].index_information()

    assert indexes["expires"]["expireAfterSeconds"] == 0


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"aud": "https://elsewhere.example/auth/token"}, "aud must be http://hub.test/auth/token"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": int(time.time()) + 3600}, "more than 300 s in the future"),
        ({"jti": None}, "'jti'"),
        ({"sub": "facility-someone-else"}, "iss and sub"),
    ],
)
async def test_assertion_claims(
    secured_app: Any, secured: httpx.AsyncClient, change: dict[str, Any], says: str
) -> None:
    identity, private, kid = await registered(secured_app)
    signed = assertion(private, identity.client_id, kid, **change)
    if change.get("jti", "") is None:
        claims = jwt.decode(signed, options={"verify_signature": False})
        claims.pop("jti")
        signed = jwt.encode(claims, private, algorithm="ES384", headers={"kid": kid})

    response = await ask(secured, signed)

    assert response.status_code == 401, response.text
    assert says in response.json()["error_description"]


async def test_a_key_the_client_did_not_register(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, _, kid = await registered(secured_app)
    stranger, _ = key_pair("ES384")

    response = await ask(secured, assertion(stranger, identity.client_id, kid))

    assert response.status_code == 401
    assert "signature" in response.json()["error_description"]


async def test_an_unknown_kid(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, private, _ = await registered(secured_app)

    response = await ask(secured, assertion(private, identity.client_id, "other-kid"))

    assert response.status_code == 401
    assert "kid" in response.json()["error_description"]


async def test_an_algorithm_smart_does_not_name(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, _, _ = await registered(secured_app)
    signed = jwt.encode(
        {"iss": identity.client_id, "sub": identity.client_id, "aud": TOKEN_URL},
        "a shared secret long enough for HS256 to accept it",
        algorithm="HS256",
    )

    response = await ask(secured, signed)

    assert response.status_code == 401
    assert "RS384, ES384" in response.json()["error_description"]


async def test_a_client_without_keys(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    private, jwk = key_pair("ES384")

    response = await ask(secured, assertion(private, identity.client_id, jwk["kid"]))

    assert response.status_code == 401
    assert "no registered public key" in response.json()["error_description"]


async def test_a_revoked_client(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, private, kid = await registered(secured_app)
    await secured_app.state.auth.identities.revoke(identity.client_id)

    response = await ask(secured, assertion(private, identity.client_id, kid))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_wrong_assertion_type(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, private, kid = await registered(secured_app)

    response = await ask_token(
        secured,
        client_assertion_type="urn:example:saml",
        client_assertion=assertion(private, identity.client_id, kid),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_registering_a_private_key_is_refused() -> None:
    private, jwk = key_pair("ES384")
    with_private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private))

    with pytest.raises(IdentityError, match="private key"):
        check_jwks({"keys": [with_private]})
    with pytest.raises(IdentityError, match="keys"):
        check_jwks([jwk])
    check_jwks({"keys": [jwk]})


async def test_a_secret_and_an_assertion_together_are_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, private, kid = await registered(secured_app)

    response = await ask(
        secured, assertion(private, identity.client_id, kid), client_secret="also this"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_openapi_document_declares_the_bearer_scheme(
    secured: httpx.AsyncClient,
) -> None:
    document = (await secured.get("/openapi.json")).json()

    schemes = document["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()
