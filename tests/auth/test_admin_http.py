"""The admin endpoints: clients and people managed over HTTP by an admin, nobody else.

Real HTTP against the real app, which requires tokens.
"""

from typing import Any

from support import client_for, hub_client, unique

CLIENTS = "/admin/clients"


async def test_only_an_admin_manages_clients(app: Any) -> None:
    async with hub_client(app) as anonymous:
        for method, path in [("GET", CLIENTS), ("POST", CLIENTS), ("POST", f"{CLIENTS}/x/revoke")]:
            response = await anonymous.request(method, path)
            assert response.status_code == 401, (method, path, response.text)
    for role, fields in [
        ("facility", {"facility": unique("F")}),
        ("clinician", {"facility": unique("F")}),
        ("auditor", {}),
        ("ministry", {}),
        ("patient", {"patient": "001085099999"}),
    ]:
        async with client_for(app, role, **fields) as someone:
            listed = await someone.get(CLIENTS)
            assert listed.status_code == 403, (role, listed.text)
            assert listed.json()["resourceType"] == "OperationOutcome"
            made = await someone.post(CLIENTS, json={"role": "admin"})
            assert made.status_code == 403, (role, made.text)


async def test_an_admin_creates_lists_and_revokes_a_facility_client(app: Any) -> None:
    code = unique("F")
    async with client_for(app, "admin") as admin:
        made = await admin.post(CLIENTS, json={"role": "facility", "facility": code, "name": "BV"})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        created = made.json()
        client_id, secret = created["client_id"], created["client_secret"]
        assert created["role"] == "facility" and created["facility"] == code
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        token = (await admin.post("/auth/token", data=form)).json()["access_token"]
        as_facility = {"authorization": f"Bearer {token}"}
        assert (await admin.get("/fhir/Patient", headers=as_facility)).status_code == 200

        listed = await admin.get(CLIENTS, params={"facility": code})
        assert listed.status_code == 200
        [row] = listed.json()
        assert row["client_id"] == client_id and row["revoked_at"] is None
        assert not {"client_secret", "secret_hash", "password_hash"} & set(row)
        assert secret not in listed.text

        revoked = await admin.post(f"{CLIENTS}/{client_id}/revoke")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await admin.get("/fhir/Patient", headers=as_facility)).status_code == 401
        again = await admin.post("/auth/token", data=form)
        assert again.status_code == 401


async def test_bad_requests_are_refused_with_what_is_wrong(app: Any) -> None:
    async with client_for(app, "admin") as admin:
        cases: list[tuple[Any, int, str]] = [
            ({"role": "superuser"}, 400, "role must be one of"),
            ({"role": "facility"}, 400, "facility"),
            ({"role": "patient"}, 400, "patient"),
            ({"role": "admin", "colour": "red"}, 400, "Unknown field 'colour'"),
            ({"role": "admin", "name": 7}, 400, "name has the wrong type"),
            (["admin"], 400, "JSON object"),
        ]
        for body, status, words in cases:
            response = await admin.post(CLIENTS, json=body)
            assert response.status_code == status, (body, response.text)
            assert words in response.text, (body, response.text)
        garbage = await admin.post(
            CLIENTS, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        username = unique("user").lower()
        first = await admin.post(CLIENTS, json={"role": "auditor", "username": username})
        assert first.status_code == 201, first.text
        taken = await admin.post(CLIENTS, json={"role": "auditor", "username": username})
        assert taken.status_code == 409 and "taken" in taken.text
        unknown = await admin.post(f"{CLIENTS}/nobody-0000/revoke")
        assert unknown.status_code == 404


async def test_an_admin_created_person_logs_in_with_the_password_given(app: Any) -> None:
    username = unique("bs").lower()
    async with client_for(app, "admin") as admin:
        made = await admin.post(
            CLIENTS,
            json={
                "role": "clinician",
                "facility": unique("F"),
                "username": username,
                "password": "a long enough password",
            },
        )
        assert made.status_code == 201, made.text
        login = await admin.post(
            "/auth/login", data={"username": username, "password": "a long enough password"}
        )
        assert login.status_code == 200, login.text


async def test_every_admin_call_is_in_the_audit_trail(app: Any) -> None:
    trail = app.state.mongo.audit
    async with client_for(app, "admin") as admin, client_for(app, "auditor") as auditor:
        await admin.get("/fhir/metadata")  # its token first
        before = await trail.count_documents({})
        made = await admin.post(CLIENTS, json={"role": "ministry", "name": "Analyst"})
        await admin.post(f"{CLIENTS}/{made.json()['client_id']}/revoke")
        await admin.get(CLIENTS)
        await auditor.get(CLIENTS)  # refused, and recorded all the same
        assert await trail.count_documents({}) == before + 4
        found = await auditor.get("/fhir/AuditEvent", params={"_count": "4"})
        events = [e["resource"] for e in found.json()["entry"]]
        subtypes = [e["subtype"][0]["code"] for e in events]
        assert subtypes == ["search-type", "search-type", "update", "create"]
        assert [e["outcome"] for e in events] == ["4", "0", "0", "0"]
        assert made.json()["client_secret"] not in found.text
