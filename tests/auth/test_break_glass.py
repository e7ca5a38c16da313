"""Break the glass: a clinician declares an emergency at /auth/break-glass and gets a
short-lived ETREAT token; the declaration and every request under that token are flagged BTG
in the audit trail, tied to it by the token's jti, and listed in the auditors' report."""

import asyncio
from typing import Any

import httpx
import jwt
import pytest
from auth.helpers import (
    BREAK_GLASS,
    bearer,
    challenge,
    claims_of,
    declare,
    emergency_token,
    register,
    token_for,
)
from pymongo.errors import ConnectionFailure
from support import FHIR_JSON, patient, unique, winning_index

from hub.auth.identities import Identity

REPORT = "/audit/break-glass"
REASON = "Unconscious patient in the emergency room, no relatives reachable"
# Whom the declarations of tests that do not look at the patient are about.
SOMEONE = "Patient/someone-in-emergency"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
JTI = "urn:ietf:params:oauth:jti:"


async def token_of(app: Any, client: httpx.AsyncClient, role: str, **fields: Any) -> str:
    """Register a caller of a role (clinicians and systems at a facility of their own)."""
    if role in ("clinician", "facility"):
        fields.setdefault("facility", unique("F"))
    identity, secret = await register(app, role, **fields)
    return await token_for(client, identity, secret)


async def clinician(app: Any, client: httpx.AsyncClient) -> tuple[Identity, str]:
    """Register a clinician; return it with an ordinary token."""
    identity, secret = await register(
        app, "clinician", facility=unique("F"), practitioner=f"Practitioner/{unique('bs')}"
    )
    return identity, await token_for(client, identity, secret)


def refused(response: httpx.Response, status: int, says: str) -> dict[str, Any]:
    """Check an OperationOutcome refusal and return its first issue."""
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = outcome["issue"][0]
    assert says in issue["diagnostics"], issue
    return issue


async def events(client: httpx.AsyncClient, auditor: str, **params: str) -> list[dict[str, Any]]:
    """Return the AuditEvents an auditor finds, newest first."""
    r = await client.get(
        "/fhir/AuditEvent", params=params | {"_count": "100"}, headers=bearer(auditor)
    )
    assert r.status_code == 200, r.text
    return [entry["resource"] for entry in r.json().get("entry", [])]


async def written_patient(app: Any, client: httpx.AsyncClient) -> str:
    """Create a Patient as some facility's system; return its id."""
    system = await token_of(app, client, "facility")
    r = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON | bearer(system))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_declaration_needs_a_reason(secured_app: Any, secured: httpx.AsyncClient) -> None:
    _, token = await clinician(secured_app, secured)
    issue = refused(await declare(secured, token), 400, "reason is required")
    assert issue["expression"] == ["reason"]
    refused(await declare(secured, token, reason="   "), 400, "reason is required")
    refused(await declare(secured, token, reason="help me"), 400, "too short (7 characters)")
    refused(await declare(secured, token, reason="x" * 501), 400, "too long (501 characters")
    issue = refused(
        await declare(secured, token, reason=REASON, patient="Observation/1"), 400, "patient takes"
    )
    assert issue["expression"] == ["patient"]
    r = await secured.post(BREAK_GLASS, json={"reason": REASON}, headers=bearer(token))
    refused(r, 400, "application/x-www-form-urlencoded")


async def test_only_a_clinician_declares(secured_app: Any, secured: httpx.AsyncClient) -> None:
    r = await declare(secured, None, reason=REASON)
    refused(r, 401, "needs a bearer token")
    assert challenge(r).startswith("Bearer")
    refused(await declare(secured, "not-a-token", reason=REASON), 401, "")
    for role in ("facility", "patient", "auditor", "admin", "ministry"):
        token = await token_of(secured_app, secured, role)
        refused(await declare(secured, token, reason=REASON), 403, "Only a clinician")
    # A refused declaration is recorded too, without the BTG flag.
    system, secret = await register(secured_app, "facility", facility=unique("F"))
    await declare(secured, await token_for(secured, system, secret), reason=REASON)
    auditor = await token_of(secured_app, secured, "auditor")
    [attempt] = await events(secured, auditor, agent=system.client_id)
    assert attempt["subtype"][0]["code"] == "110127" and attempt["outcome"] == "4"
    assert "meta" not in attempt and "no emergency access granted" in attempt["outcomeDesc"]


async def test_the_token_carries_the_emergency(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, ordinary = await clinician(secured_app, secured)
    pid = unique("p")
    r = await declare(secured, ordinary, reason=f"  {REASON}  ", patient=pid)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    lifetime = secured_app.state.settings.break_glass_seconds
    assert body["token_type"] == "bearer" and body["expires_in"] == lifetime == 900
    assert body["scope"] == claims_of(ordinary)["scope"]
    granted = claims_of(body["access_token"])
    assert granted["purpose"] == "ETREAT" and granted["btg_reason"] == REASON
    assert granted["exp"] - granted["iat"] == lifetime
    assert granted["sub"] == identity.client_id and granted["fac"] == identity.facility
    assert granted["jti"] != claims_of(ordinary)["jti"]
    assert "purpose" not in claims_of(ordinary)
    # The token works, and the declaration is in the trail before it was handed out.
    found = await secured.get(f"/fhir/Patient/{pid}", headers=bearer(body["access_token"]))
    assert found.status_code in (200, 404), found.text
    auditor = await token_of(secured_app, secured, "auditor")
    declared = [
        e
        for e in await events(secured, auditor, agent=identity.client_id)
        if e["type"]["code"] == "110113"
    ]
    assert len(declared) == 1
    event = declared[0]
    assert event["subtype"][0]["code"] == "110127" and event["outcome"] == "0"
    assert event["meta"]["security"][0] == {
        "system": ACT_REASON,
        "code": "BTG",
        "display": "break the glass",
    }
    agent = event["agent"][0]
    assert agent["who"]["identifier"]["value"] == identity.client_id
    assert agent["location"]["identifier"]["value"] == identity.facility
    assert agent["purposeOfUse"][0] == {
        "coding": [{"system": ACT_REASON, "code": "ETREAT"}],
        "text": REASON,
    }
    assert agent["policy"] == [JTI + claims_of(ordinary)["jti"]]
    issued = [e for e in event["entity"] if e["role"]["code"] == "13"][0]
    assert issued["what"]["identifier"]["value"] == JTI + granted["jti"]
    assert issued["detail"] == [
        {"type": "expires", "valueString": issued["detail"][0]["valueString"]}
    ]
    assert [e["what"]["reference"] for e in event["entity"] if e["role"]["code"] == "1"] == [
        f"Patient/{pid}"
    ]
    # Named for the patient: their own trail shows the emergency declared about them.
    assert [e["id"] for e in await events(secured, auditor, patient=f"Patient/{pid}")][-1] == event[
        "id"
    ]


async def test_an_expired_break_glass_token_is_refused(
    secured_app: Any, secured: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = secured_app.state.auth
    brief = authority.settings.model_copy(update={"break_glass_seconds": 1})
    monkeypatch.setattr(authority, "settings", brief)
    _, ordinary = await clinician(secured_app, secured)
    r = await declare(secured, ordinary, reason=REASON, patient=SOMEONE)
    assert r.status_code == 200 and r.json()["expires_in"] == 1, r.text
    await asyncio.sleep(1.2)
    expired = await secured.get("/fhir/Patient", headers=bearer(r.json()["access_token"]))
    refused(expired, 401, "expired")
    assert 'error="invalid_token"' in challenge(expired)


async def test_a_break_glass_token_cannot_renew_itself(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    _, ordinary = await clinician(secured_app, secured)
    first = await declare(secured, ordinary, reason=REASON, patient=SOMEONE)
    assert first.status_code == 200, first.text
    again = await declare(secured, first.json()["access_token"], reason=REASON, patient=SOMEONE)
    refused(again, 403, "cannot declare another emergency")
    # A new declaration needs an ordinary token.
    assert (await declare(secured, ordinary, reason=REASON, patient=SOMEONE)).status_code == 200


async def test_requests_under_it_are_flagged_with_its_jti(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, ordinary = await clinician(secured_app, secured)
    pid = await written_patient(secured_app, secured)
    r = await declare(secured, ordinary, reason=REASON, patient=pid)
    emergency = r.json()["access_token"]
    for token in (emergency, emergency, ordinary):
        await secured.get(f"/fhir/Patient/{pid}", headers=bearer(token))
    auditor = await token_of(secured_app, secured, "auditor")
    reads = [
        e
        for e in await events(secured, auditor, agent=identity.client_id)
        if e["type"]["code"] == "rest"
    ]
    assert len(reads) == 3
    ordinary_read, *flagged = reads  # newest first
    for event in flagged:
        assert event["meta"]["security"][0]["code"] == "BTG"
        agent = event["agent"][0]
        assert agent["policy"] == [JTI + claims_of(emergency)["jti"]]
        assert agent["purposeOfUse"][0]["coding"][0]["code"] == "ETREAT"
        assert agent["purposeOfUse"][0]["text"] == REASON
        assert f"Patient/{pid}" in {e["what"].get("reference") for e in event["entity"]}
    assert "meta" not in ordinary_read
    assert ordinary_read["agent"][0]["policy"] == [JTI + claims_of(ordinary)["jti"]]
    assert ordinary_read["agent"][0]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    # Auditors find the break-the-glass events by their label.
    labelled = await events(secured, auditor, agent=identity.client_id, _security="BTG")
    assert [e["id"] for e in labelled] == [e["id"] for e in flagged] + [
        e["id"]
        for e in await events(secured, auditor, agent=identity.client_id)
        if e["type"]["code"] == "110113"
    ]
    with_system = await events(
        secured, auditor, agent=identity.client_id, _security=f"{ACT_REASON}|BTG"
    )
    assert len(with_system) == 3
    assert await events(secured, auditor, agent=identity.client_id, _security="R") == []


async def test_the_report_lists_each_declaration_and_its_accesses(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    identity, ordinary = await clinician(secured_app, secured)
    pids = [await written_patient(secured_app, secured) for _ in range(2)]
    r = await declare(secured, ordinary, reason=REASON, patient=pids[0])
    emergency = r.json()["access_token"]
    for pid in (pids[0], pids[1], pids[0]):
        await secured.get(f"/fhir/Patient/{pid}", headers=bearer(emergency))
    await secured.get(f"/fhir/Patient/{unique('absent')}", headers=bearer(emergency))
    await secured.get(f"/fhir/Patient/{pids[1]}", headers=bearer(ordinary))  # not listed
    auditor = await token_of(secured_app, secured, "auditor")

    report = await secured.get(REPORT, headers=bearer(auditor))
    assert report.status_code == 200, report.text
    assert report.headers["cache-control"] == "no-store"
    body = report.json()
    assert body["truncated"] is False and body["since"] < body["until"]
    jti = claims_of(emergency)["jti"]
    [mine] = [d for d in body["declarations"] if d["token"] == jti]
    assert mine["client_id"] == identity.client_id
    assert mine["facility"] == identity.facility
    assert mine["practitioner"] == identity.practitioner
    assert mine["reason"] == REASON and mine["patient"] == f"Patient/{pids[0]}"
    assert mine["declared"] < mine["expires"]
    declared = await secured.get(f"/fhir/{mine['event']}", headers=bearer(auditor))
    assert declared.status_code == 200 and declared.json()["type"]["code"] == "110113"
    accesses = mine["accesses"]
    assert accesses["count"] == 4
    assert set(accesses["patients"]) >= {f"Patient/{pid}" for pid in pids}
    assert sum(accesses["outcomes"].values()) == 4 and accesses["outcomes"]["minor-failure"] >= 1
    assert mine["declared"] <= accesses["first"] <= accesses["last"] <= mine["expires"]

    # Reading the report is audited, naming the patients it shows.
    [read] = [
        e
        for e in await events(secured, auditor, agent=claims_of(auditor)["sub"])
        if e["outcomeDesc"] == f"HTTP 200 on GET {REPORT}"
    ]
    shown = {e["what"]["reference"] for e in read["entity"] if "what" in e}
    assert {f"Patient/{pid}" for pid in pids} | {mine["event"]} <= shown

    before = await secured.get(
        REPORT, params={"since": "2019-12-01", "until": "2020-01-01"}, headers=bearer(auditor)
    )
    assert before.status_code == 200 and before.json()["declarations"] == []
    day = mine["declared"][:10]
    that_day = await secured.get(
        REPORT, params={"since": day, "until": day}, headers=bearer(auditor)
    )
    assert jti in {d["token"] for d in that_day.json()["declarations"]}
    bad = await secured.get(REPORT, params={"since": "yesterday"}, headers=bearer(auditor))
    assert refused(bad, 400, "since takes a FHIR date")["expression"] == ["since"]
    backwards = await secured.get(
        REPORT, params={"since": "2026-01-02", "until": "2026-01-01"}, headers=bearer(auditor)
    )
    refused(backwards, 400, "must come before")


async def test_only_auditors_read_the_report(secured_app: Any, secured: httpx.AsyncClient) -> None:
    r = await secured.get(REPORT)
    refused(r, 401, "needs a bearer token")
    assert challenge(r).startswith("Bearer")
    for role in ("clinician", "facility", "patient", "admin", "ministry"):
        token = await token_of(secured_app, secured, role)
        refused(await secured.get(REPORT, headers=bearer(token)), 403, "read by auditors")
    # The refusals are in the trail.
    auditor = await token_of(secured_app, secured, "auditor")
    [refusal] = await events(secured, auditor, agent=claims_of(token)["sub"])
    assert refusal["outcome"] == "4" and refusal["outcomeDesc"] == f"HTTP 403 on GET {REPORT}"


async def test_no_emergency_access_without_its_record(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    _, ordinary = await clinician(secured_app, secured)

    class Down:
        async def append(self, *args: Any) -> None:
            raise ConnectionFailure("audit store down")

    # Not monkeypatch: Starlette's State keeps attributes where monkeypatch cannot restore them.
    trail = secured_app.state.audit
    try:
        secured_app.state.audit = Down()
        r = await declare(secured, ordinary, reason=REASON, patient=SOMEONE)
    finally:
        secured_app.state.audit = trail
    refused(r, 503, "no emergency access is granted")
    assert "access_token" not in r.text


async def test_the_report_reads_by_the_btg_index(secured_app: Any) -> None:
    """The report and `_security=BTG` drive with the sparse btg index."""
    audit = secured_app.state.mongo.audit
    for predicate in [
        {"_hub.btg": "declaration"},
        {"_hub.btg": {"$in": ["declaration", "access"]}},
    ]:
        assert winning_index(await audit.find(predicate).explain()) == "btg", predicate


# --- one person: the token is bound to the Patient it was declared for -----------------------


async def test_a_declaration_names_its_patient(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    _, token = await clinician(secured_app, secured)
    for form in ({"reason": REASON}, {"reason": REASON, "patient": "   "}):
        issue = refused(await declare(secured, token, **form), 400, "patient is required")
        assert issue["expression"] == ["patient"]
    assert (await declare(secured, token, reason=REASON, patient=SOMEONE)).status_code == 200


async def test_the_token_carries_its_patient_to_the_caller(
    secured_app: Any, secured: httpx.AsyncClient
) -> None:
    _, ordinary = await clinician(secured_app, secured)
    pid = unique("p")
    r = await declare(secured, ordinary, reason=REASON, patient=pid)
    assert r.status_code == 200, r.text
    emergency = r.json()["access_token"]

    assert claims_of(emergency)["btg_patient"] == f"Patient/{pid}"
    assert "btg_patient" not in claims_of(ordinary)
    tokens = secured_app.state.auth.tokens
    assert (await tokens.verify(emergency)).break_glass_patient == f"Patient/{pid}"
    assert (await tokens.verify(ordinary)).break_glass_patient is None


def signed_by_the_hub(app: Any, claims: dict[str, Any]) -> str:
    """Sign claims with the hub's own signing key, as only the hub can."""
    key = app.state.auth.tokens.keys.signing()
    return jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.kid})


@pytest.mark.parametrize(
    "change",
    [
        {"btg_patient": None},
        {"btg_patient": "Observation/1"},
        {"btg_patient": ["Patient/a", "Patient/b"]},
        {"purpose": None, "btg_reason": None},
    ],
    ids=["no-patient", "not-a-patient", "several", "patient-without-emergency"],
)
async def test_a_token_whose_patient_binding_is_wrong_is_refused(
    secured_app: Any, secured: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    """Even signed with the hub's key, an emergency token must name exactly one Patient, and
    only an emergency token may name one."""
    _, ordinary = await clinician(secured_app, secured)
    emergency = await emergency_token(secured, ordinary, REASON, patient=SOMEONE)
    claims = {k: v for k, v in (claims_of(emergency) | change).items() if v is not None}

    r = await secured.get("/fhir/Patient", headers=bearer(signed_by_the_hub(secured_app, claims)))

    refused(r, 401, "purpose is not one the hub issues")
