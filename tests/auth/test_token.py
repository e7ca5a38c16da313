"""POST /auth/token (client secret) and POST /auth/login, over HTTP against the real app."""

from typing import Any

import httpx
import jwt
import pytest
from auth.helpers import LOGIN, ask_token, register, token_for

ROLES = ("admin", "facility", "clinician", "ministry", "auditor", "patient")


def refused(response: httpx.Response, status: int, error: str) -> str:
    """Check an OAuth2 error response; return its description."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["cache-control"] == "no-store"
    return str(body["error_description"])


@pytest.mark.parametrize("role", ROLES)
async def test_a_good_secret_gets_a_token_with_the_role_claims(
    secured_app: Any, secured: httpx.AsyncClient, role: str
) -> None:
    identity, secret = await register(secured_app, role)

    response = await ask_token(secured, client_id=identity.client_id, client_secret=secret)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == identity.client_id
    assert claims["role"] == role
    assert claims["aud"] == "ehrhub" and claims["iss"] == "ehrhub"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == body["scope"]
    assert claims.get("fac") == identity.facility
    assert claims.get("pat") == identity.patient


async def test_a_token_carries_no_secret(secured_app: Any, secured: httpx.AsyncClient) -> None:
    identity, secret = await register(secured_app, "facility")

    token = await token_for(secured, identity, secret)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert secret not in str(claims) and "argon2" not in str(claims)


async def test_wrong_secret_unknown_and_revoked_clients_read_the_same(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "facility")
    revoked, revoked_secret = await register(secured_app, "facility")
    await secured_app.state.auth.identities.revoke(revoked.client_id)

    wrong = await ask_token(secured, client_id=identity.client_id, client_secret=secret + "x")
    unknown = await ask_token(secured, client_id="facility-nobody", client_secret=secret)
    gone = await ask_token(secured, client_id=revoked.client_id, client_secret=revoked_secret)

    descriptions = {refused(r, 401, "invalid_client") for r in (wrong, unknown, gone)}
    assert len(descriptions) == 1, descriptions


async def test_missing_credentials(secured: httpx.AsyncClient) -> None:
    response = await ask_token(secured, client_id="facility-x")

    assert "client_secret" in refused(response, 401, "invalid_client")


@pytest.mark.parametrize(
    ("form", "error", "says"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type", "password"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type", "client_credentials"),
        ({}, "invalid_request", "grant_type is required"),
    ],
)
async def test_grant_type(
    secured_app: Any, secured: httpx.AsyncClient, form: dict[str, str], error: str, says: str
) -> None:
    identity, secret = await register(secured_app, "facility")
    credentials = {"client_id": identity.client_id, "client_secret": secret}

    response = await secured.post("/auth/token", data=credentials | form)

    assert says in refused(response, 400, error)


async def test_a_parameter_given_twice_is_refused(secured: httpx.AsyncClient) -> None:
    body = "grant_type=client_credentials&client_id=a&client_id=b&client_secret=s"
    response = await secured.post(
        "/auth/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert "client_id is given twice" in refused(response, 400, "invalid_request")


async def test_a_json_body_is_refused(secured: httpx.AsyncClient) -> None:
    response = await secured.post("/auth/token", json={"grant_type": "client_credentials"})

    assert "x-www-form-urlencoded" in refused(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("role", "asked", "granted"),
    [
        ("clinician", "user/*.cruds", "user/*.rs"),
        ("clinician", "openid fhirUser user/Patient.read", "user/Patient.rs"),
        (
            "facility",
            "system/Patient.rs system/Observation.c",
            "system/Observation.c system/Patient.rs",
        ),
        (
            "admin",
            "system/*.rs",
            "system/Location.rs system/Organization.rs system/Practitioner.rs",
        ),
    ],
)
async def test_scope_intersection(
    secured_app: Any, secured: httpx.AsyncClient, role: str, asked: str, granted: str
) -> None:
    identity, secret = await register(secured_app, role)

    token = await token_for(secured, identity, secret, scope=asked)

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == granted


@pytest.mark.parametrize(
    ("role", "asked"),
    [("clinician", "system/*.cruds"), ("ministry", "user/Patient.rs"), ("facility", "system/*.rc")],
)
async def test_invalid_scope(
    secured_app: Any, secured: httpx.AsyncClient, role: str, asked: str
) -> None:
    identity, secret = await register(secured_app, role)

    response = await ask_token(
        secured, client_id=identity.client_id, client_secret=secret, scope=asked
    )

    refused(response, 400, "invalid_scope")


async def test_login_with_username_and_password(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "clinician", username="Dr.Login.Ok")

    response = await secured.post(LOGIN, data={"username": "dr.login.ok", "password": secret})

    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == identity.client_id
    assert claims["scope"] == "user/*.rs"


async def test_login_with_a_password_of_its_own(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    password = "correct horse battery staple"
    identity, secret = await register(
        secured_app, "auditor", username="auditor.own", password=password
    )

    good = await secured.post(LOGIN, data={"username": "auditor.own", "password": password})
    secret_as_password = await secured.post(
        LOGIN, data={"username": "auditor.own", "password": secret}
    )

    assert good.status_code == 200
    refused(secret_as_password, 400, "invalid_grant")


async def test_login_failures_do_not_tell_whether_the_user_exists(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    _, secret = await register(secured_app, "clinician", username="dr.login.bad")
    revoked, revoked_secret = await register(secured_app, "patient", username="pt.revoked")
    await secured_app.state.auth.identities.revoke(revoked.client_id)

    wrong = await secured.post(LOGIN, data={"username": "dr.login.bad", "password": "nope"})
    unknown = await secured.post(LOGIN, data={"username": "dr.nobody", "password": secret})
    gone = await secured.post(LOGIN, data={"username": "pt.revoked", "password": revoked_secret})

    bodies = [r.json() for r in (wrong, unknown, gone)]
    assert all(r.status_code == 400 for r in (wrong, unknown, gone))
    assert (
        bodies[0]
        == bodies[1]
        == bodies[2]
        == {
            "error": "invalid_grant",
            "error_description": "The username or password is wrong",
        }
    )


async def test_login_needs_both_fields(secured: httpx.AsyncClient) -> None:
    response = await secured.post(LOGIN, data={"username": "someone"})

    refused(response, 400, "invalid_request")


async def test_a_facility_system_cannot_log_in(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(secured_app, "facility")

    response = await secured.post(LOGIN, data={"username": identity.client_id, "password": secret})

    refused(response, 400, "invalid_grant")
