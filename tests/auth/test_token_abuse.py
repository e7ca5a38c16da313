"""Forged, expired and replayed bearer tokens: each refused with 401, and nothing done.

Adds to tests/auth/test_bearer.py (expiry, a tampered role, another key, another audience,
unsigned, malformed, a missing claim, revocation on a read) the cases it leaves out: each
claim that scopes a caller tampered with on its own, other algorithms, issuer and subject,
the edges of a token's lifetime, and a revoked client's tokens replayed on writes, Bundles,
the audit trail and the break-the-glass endpoints. Real HTTP against a hub requiring tokens.
"""

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from auth.helpers import bearer, challenge, claims_of, declare, emergency_token, register, token_for
from cryptography.hazmat.primitives.asymmetric import rsa
from support import FHIR_JSON, observation, patient, unique

EMERGENCY_REASON = "Unconscious in the emergency room; no relative reachable"


def b64(data: dict[str, Any]) -> str:
    """Encode a JWT segment."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def tampered(token: str, **changes: Any) -> str:
    """Return the token with claims changed and its signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{b64(claims_of(token) | changes)}.{signature}"


async def signed(app: Any, claims: dict[str, Any], algorithm: str = "HS256") -> str:
    """Sign claims with the hub's own key (as only the hub can)."""
    key = app.state.auth.tokens.keys.signing()
    return jwt.encode(claims, key.secret, algorithm=algorithm, headers={"kid": key.kid})


def normal_claims(client_id: str, role: str, **changes: Any) -> dict[str, Any]:
    """Return the claims of a token the hub would issue now, with changes."""
    now = int(time.time())
    return {
        "iss": "ehrhub",
        "sub": client_id,
        "aud": "ehrhub",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "scope": "system/*.cruds",
        "role": role,
    } | changes


def refused(response: httpx.Response, says: str = "") -> None:
    """Check a 401 invalid_token answer: OperationOutcome and the RFC 6750 challenge."""
    assert response.status_code == 401, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert says in outcome["issue"][0]["diagnostics"], outcome
    assert 'error="invalid_token"' in challenge(response)


@pytest.mark.parametrize(
    ("role", "changes"),
    [
        ("facility", {"fac": "ANOTHER-FACILITY"}),
        ("patient", {"pat": "079099000001"}),
        ("patient", {"scope": "patient/*.cruds"}),
        ("patient", {"role": "auditor", "scope": "user/AuditEvent.rs"}),
        ("ministry", {"role": "admin"}),
        ("clinician", {"purpose": "ETREAT", "btg_reason": EMERGENCY_REASON}),
        ("clinician", {"exp": int(time.time()) + 86_400}),
        ("auditor", {"sub": "facility-0000000000000000"}),
        ("facility", {"aud": ["ehrhub", "https://elsewhere.example"]}),
    ],
    ids=lambda value: value if isinstance(value, str) else "+".join(value),
)
async def test_each_claim_tampered_alone_is_refused(
    secured_app: Any, secured: httpx.AsyncClient, role: str, changes: dict[str, Any]
) -> None:
    identity, secret = await register(secured_app, role)
    token = await token_for(secured, identity, secret)

    response = await secured.get("/fhir/Patient", headers=bearer(tampered(token, **changes)))

    refused(response, "signature")


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_another_algorithm_with_the_hubs_key_is_refused(
    secured_app: Any, secured: httpx.AsyncClient, algorithm: str
) -> None:
    identity, _ = await register(secured_app, "facility")
    claims = normal_claims(identity.client_id, "facility", fac=identity.facility)

    response = await secured.get(
        "/fhir/Patient", headers=bearer(await signed(secured_app, claims, algorithm))
    )

    refused(response, "HS256")


async def test_alg_none_claiming_more_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    """An unsigned token that makes a patient a facility system gets nothing."""
    identity, secret = await register(secured_app, "patient")
    token = await token_for(secured, identity, secret)
    forged = claims_of(token) | {"role": "facility", "scope": "system/*.cruds", "fac": "X"}

    for header in ({"alg": "none", "typ": "JWT"}, {"alg": "None"}, {"alg": "NONE"}):
        unsigned = f"{b64(header)}.{b64(forged)}."
        response = await secured.get("/fhir/Patient", headers=bearer(unsigned))
        refused(response)


async def test_a_token_carrying_its_own_public_key_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    """A token signed RS256 with the forger's key, which its header embeds, is not believed."""
    identity, _ = await register(secured_app, "facility")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    claims = normal_claims(identity.client_id, "facility", fac=identity.facility)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"jwk": public, "kid": "mine"})

    response = await secured.get("/fhir/Patient", headers=bearer(token))

    refused(response)


async def test_another_issuer_is_refused(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, _ = await register(secured_app, "facility")
    claims = normal_claims(identity.client_id, "facility", iss="https://another-hub.example")

    response = await secured.get("/fhir/Patient", headers=bearer(await signed(secured_app, claims)))

    refused(response, "not issued by this hub")


async def test_a_subject_the_hub_never_registered_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    claims = normal_claims(unique("facility-"), "facility", fac="F-NOBODY")

    response = await secured.get("/fhir/Patient", headers=bearer(await signed(secured_app, claims)))

    refused(response, "no longer known")


@pytest.mark.parametrize(
    "lifetime",
    [
        {"exp": -1},  # expired a second ago
        {"nbf": 120},  # not valid for two more minutes
        {"iat": 3600},  # issued in an hour
    ],
    ids=["expired-by-a-second", "not-yet-valid", "issued-in-the-future"],
)
async def test_the_edges_of_a_tokens_lifetime(
    secured_app: Any, secured: httpx.AsyncClient, lifetime: dict[str, int]
) -> None:
    identity, _ = await register(secured_app, "facility")
    now = int(time.time())
    moments = {name: now + offset for name, offset in lifetime.items()}
    claims = normal_claims(identity.client_id, "facility", fac=identity.facility) | moments

    response = await secured.get("/fhir/Patient", headers=bearer(await signed(secured_app, claims)))

    refused(response)


async def test_a_token_in_the_query_string_or_a_cookie_is_not_a_bearer_token(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    """Only the Authorization header carries a token: URLs are logged and cookies are sent by
    browsers on their own."""
    identity, secret = await register(secured_app, "facility")
    token = await token_for(secured, identity, secret)

    in_query = await secured.get("/fhir/Patient", params={"access_token": token})
    in_cookie = await secured.get("/fhir/Patient", headers={"cookie": f"access_token={token}"})

    for response in (in_query, in_cookie):
        assert response.status_code == 401, response.text
        assert challenge(response) == 'Bearer realm="ehrhub"'


async def written(app: Any, marker: str) -> int:
    """Count the stored resources carrying a test's identifier, whoever wrote them."""
    return int(await app.state.mongo.resources.count_documents({"identifier.value": marker}))


async def test_a_revoked_facility_replaying_its_token_writes_nothing(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "facility", facility=unique("F"))
    token = await token_for(secured, identity, secret)
    subject = await secured.post("/fhir/Patient", json=patient(), headers=FHIR_JSON | bearer(token))
    assert subject.status_code == 201, subject.text
    reference = f"Patient/{subject.json()['id']}"
    await secured_app.state.auth.identities.revoke(identity.client_id)
    marker = unique()
    mark = [{"system": "urn:test:replay", "value": marker}]
    replayed = bearer(token) | FHIR_JSON
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(reference, identifier=mark),
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }

    for method, path, body in [
        ("POST", "/fhir/Observation", observation(reference, identifier=mark)),
        ("PUT", f"/fhir/{reference}", patient(id=reference.split("/")[1], identifier=marker)),
        ("DELETE", f"/fhir/{reference}", None),
        ("POST", "/fhir", bundle),
        ("POST", "/fhir", bundle | {"type": "batch"}),
    ]:
        response = await secured.request(method, path, json=body, headers=replayed)
        refused(response, "revoked")

    assert await written(secured_app, marker) == 0
    still = await secured_app.state.mongo.resources.find_one({"_id": reference})
    assert still is not None and not still.get("_hub", {}).get("del"), still


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("auditor", "GET", "/fhir/AuditEvent"),
        ("auditor", "GET", "/audit/break-glass"),
        ("patient", "GET", "/fhir/AuditEvent"),
        ("clinician", "GET", "/fhir/Patient"),
        ("clinician", "POST", "/auth/break-glass"),
        ("admin", "POST", "/fhir/Organization"),
    ],
)
async def test_a_revoked_persons_login_token_is_refused_everywhere(
    secured_app: Any, secured: httpx.AsyncClient, role: str, method: str, path: str
) -> None:
    """A person's token from /auth/login stops when they are revoked, on every kind of route."""
    username = unique("user.")
    identity, secret = await register(secured_app, role, username=username)
    login = await secured.post("/auth/login", data={"username": username, "password": secret})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    await secured_app.state.auth.identities.revoke(identity.client_id)
    kwargs: dict[str, Any] = {"headers": bearer(token)}
    if path == "/auth/break-glass":
        kwargs["data"] = {"reason": EMERGENCY_REASON}
    elif method == "POST":
        kwargs["json"] = {"resourceType": "Organization", "name": unique("Org ")}
        kwargs["headers"] |= FHIR_JSON

    response = await secured.request(method, path, **kwargs)

    refused(response, "revoked")


async def test_a_break_glass_token_stops_when_its_clinician_is_revoked(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "clinician")
    token = await token_for(secured, identity, secret)
    emergency = await emergency_token(secured, token, EMERGENCY_REASON)
    before = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(emergency))

    await secured_app.state.auth.identities.revoke(identity.client_id)
    after = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(emergency))
    again = await declare(secured, token, reason=EMERGENCY_REASON)

    assert before.status_code == 200, before.text
    refused(after, "revoked")
    refused(again, "revoked")


async def test_a_break_glass_token_tampered_to_live_longer_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "clinician")
    token = await token_for(secured, identity, secret)
    emergency = await emergency_token(secured, token, EMERGENCY_REASON)

    longer = tampered(emergency, exp=claims_of(emergency)["exp"] + 86_400)
    response = await secured.get("/fhir/Patient", headers=bearer(longer))

    refused(response, "signature")
