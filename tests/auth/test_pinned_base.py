"""The FHIR base and the private_key_jwt audience are pinned: EHRHUB_PUBLIC_BASE_URL, else the
address the hub listens on; a forged Host header changes neither."""

from typing import Any

import httpx
from auth.helpers import TOKEN
from auth.test_private_key_jwt import ASSERTION_TYPE, assertion, registered
from support import FHIR_JSON, TokenAuth, another_hub, hub_client, patient

FORGED_HOST = {"host": "evil.example"}
PINNED = "http://hub.test/fhir"


def urls(bundle: dict[str, Any]) -> list[str]:
    """Return every link and fullUrl of a Bundle."""
    return [link["url"] for link in bundle.get("link", [])] + [
        entry["fullUrl"] for entry in bundle.get("entry", [])
    ]


async def test_a_forged_host_gets_the_pinned_base(client: httpx.AsyncClient) -> None:
    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON | FORGED_HOST)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]

    found = await client.get("/fhir/Patient", params={"_id": pid}, headers=FORGED_HOST)
    metadata = await client.get("/fhir/metadata", headers=FORGED_HOST)
    smart = await client.get("/.well-known/smart-configuration", headers=FORGED_HOST)

    assert created.headers["location"].startswith(f"{PINNED}/Patient/{pid}/_history/")
    assert urls(found.json()) and all(u.startswith(f"{PINNED}/Patient") for u in urls(found.json()))
    assert "evil.example" not in metadata.text and PINNED in metadata.text
    assert smart.json()["token_endpoint"] == "http://hub.test/auth/token"


async def test_an_assertion_for_a_forged_audience_is_refused(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, private, kid = await registered(secured_app)

    forged = assertion(private, identity.client_id, kid, aud="http://evil.example/auth/token")
    refused = await secured.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": forged,
        },
        headers=FORGED_HOST,
    )

    assert refused.status_code == 401 and "aud must be http://hub.test/auth/token" in refused.text


async def test_the_pinned_audience_is_accepted_whatever_the_host(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, private, kid = await registered(secured_app)

    response = await secured.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(private, identity.client_id, kid),
        },
        headers=FORGED_HOST,
    )

    assert response.status_code == 200, response.text


async def test_without_a_public_base_the_listening_address_is_the_base(
    app: Any, suite_auth: TokenAuth
) -> None:
    """With no EHRHUB_PUBLIC_BASE_URL, the base is http://EHRHUB_HOST:EHRHUB_PORT/fhir (a
    wildcard host read as 127.0.0.1), whatever Host the request names."""
    listening = "http://127.0.0.1:8123"
    async with (
        another_hub(app, public_base_url=None, host="0.0.0.0", port=8123) as hub,
        hub_client(hub, suite_auth) as http,
    ):
        created = await http.post("/fhir/Patient", json=patient(), headers=FHIR_JSON | FORGED_HOST)
        found = await http.get(
            "/fhir/Patient", params={"_id": created.json()["id"]}, headers=FORGED_HOST
        )
        smart = await http.get("/.well-known/smart-configuration", headers=FORGED_HOST)
        metadata = await http.get("/fhir/metadata", headers=FORGED_HOST)
        identity, private, kid = await registered(hub)
        answers = {}
        for audience in (f"{listening}/auth/token", "http://evil.example/auth/token"):
            signed = assertion(private, identity.client_id, kid, aud=audience)
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": signed,
            }
            answers[audience] = await http.post(TOKEN, data=form, headers=FORGED_HOST)

    assert created.headers["location"].startswith(f"{listening}/fhir/Patient/")
    assert urls(found.json()) and all(
        u.startswith(f"{listening}/fhir/") for u in urls(found.json())
    )
    assert smart.json()["token_endpoint"] == f"{listening}/auth/token"
    assert "evil.example" not in metadata.text and f"{listening}/fhir" in metadata.text
    assert answers[f"{listening}/auth/token"].status_code == 200
    assert answers["http://evil.example/auth/token"].status_code == 401
