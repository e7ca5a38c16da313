"""A token's role, facility, practitioner and patient are checked against the stored identity
on every request: a change to the identity applies at once to the tokens issued before it."""

from typing import Any

import httpx
import pytest
from auth.helpers import bearer, register, token_for
from support import unique


async def change_identity(app: Any, client_id: str, **fields: str) -> None:
    """Change the stored identity document itself, as an operator's edit would."""
    changed = await app.state.auth.identities.collection.update_one(
        {"_id": client_id}, {"$set": fields}
    )
    assert changed.modified_count == 1


@pytest.mark.parametrize(
    ("role", "change", "named"),
    [
        ("facility", {"facility": "F-MOVED"}, "facility"),
        ("clinician", {"facility": "F-MOVED"}, "facility"),
        ("clinician", {"practitioner": "Practitioner/another"}, "practitioner"),
        ("clinician", {"role": "auditor"}, "role"),
        ("patient", {"patient": "079099000002"}, "patient"),
        ("facility", {"role": "admin"}, "role"),
    ],
    ids=lambda value: value if isinstance(value, str) else "+".join(value),
)
async def test_a_changed_identity_refuses_the_tokens_issued_before(
    secured_app: Any, secured: httpx.AsyncClient, role: str, change: dict[str, str], named: str
) -> None:
    fields = {"practitioner": f"Practitioner/{unique('bs')}"} if role == "clinician" else {}
    identity, secret = await register(secured_app, role, **fields)
    token = await token_for(secured, identity, secret)
    before = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    await change_identity(secured_app, identity.client_id, **change)
    after = await secured.get("/fhir/Patient", params={"_count": "1"}, headers=bearer(token))

    assert before.status_code in (200, 403), before.text  # the role's own answer
    assert after.status_code == 401, after.text
    assert f"different {named} since the token was issued" in after.text
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    fresh = await token_for(secured, identity, secret)  # a new token carries the change
    assert (await secured.get("/fhir/Patient", headers=bearer(fresh))).status_code != 401


async def test_the_caller_is_the_stored_identity(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, secret = await register(
        secured_app, "clinician", practitioner=f"Practitioner/{unique('bs')}"
    )
    token = await token_for(secured, identity, secret)

    caller = await secured_app.state.auth.tokens.verify(token)

    assert (caller.role, caller.facility, caller.practitioner, caller.patient) == (
        identity.role,
        identity.facility,
        identity.practitioner,
        None,
    )
