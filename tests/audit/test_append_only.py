"""The audit trail is append-only: no HTTP path writes, changes or deletes an AuditEvent, and
the only code touching the `audit` collection inserts and finds."""

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.errors import ConnectionFailure
from support import FHIR_JSON, patient, unique

HUB = Path(__file__).parents[2] / "hub"
EVENT = {
    "resourceType": "AuditEvent",
    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
    "recorded": "2026-01-01T00:00:00Z",
    "agent": [{"requestor": True}],
    "source": {"observer": {"display": "forger"}},
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/fhir/AuditEvent"),
        ("PUT", "/fhir/AuditEvent"),
        ("PUT", "/fhir/AuditEvent/x1"),
        ("PATCH", "/fhir/AuditEvent/x1"),
        ("DELETE", "/fhir/AuditEvent/x1"),
        ("DELETE", "/fhir/AuditEvent?agent=someone"),
        ("GET", "/fhir/AuditEvent/x1/_history"),
    ],
)
async def test_no_write_path(client: httpx.AsyncClient, method: str, path: str) -> None:
    r = await client.request(method, path, json=EVENT | {"id": "x1"}, headers=FHIR_JSON)
    assert r.status_code == 405, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("kind", ["transaction", "batch"])
async def test_no_audit_event_in_bundles(client: httpx.AsyncClient, kind: str) -> None:
    entries = [
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": EVENT, "request": {"method": "POST", "url": "AuditEvent"}},
        {"request": {"method": "DELETE", "url": "AuditEvent?agent=x"}},
        {"request": {"method": "GET", "url": "AuditEvent?agent=x"}},
    ]
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    r = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    if kind == "transaction":
        assert r.status_code == 405, r.text
        assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.url"]
    else:
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert statuses[0].startswith("201") and all(s.startswith("405") for s in statuses[1:])


def test_the_audit_package_never_changes_its_collection() -> None:
    forbidden = re.compile(
        r"\.(update_one|update_many|replace_one|delete_one|delete_many|drop|find_one_and_\w+"
        r"|bulk_write|rename|insert_many)\("
    )
    for source in (HUB / "audit").glob("*.py"):
        assert not forbidden.search(source.read_text()), source
    used = set(re.findall(r"self\.collection\.(\w+)", (HUB / "audit" / "trail.py").read_text()))
    assert used == {"insert_one", "find", "find_one", "count_documents"}
    # Nothing else in the hub reaches the collection: only the wiring hands it to the trail.
    for source in HUB.rglob("*.py"):
        text = source.read_text()
        if source.parent.name != "audit" and source.name not in ("mongo.py", "app.py"):
            assert "mongo.audit" not in text and '"audit"]' not in text, source


async def test_an_unwritable_trail_withholds_the_answer(
    app: Any, client: httpx.AsyncClient
) -> None:
    trail = app.state.audit

    class Down:
        async def append(self, *args: Any) -> None:
            raise ConnectionFailure("audit store down")

    class Broken:
        async def append(self, *args: Any) -> None:
            raise ValueError("not the store")

    created = await client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON)
    pid = created.json()["id"]
    try:
        app.state.audit = Down()
        r = await client.get(f"/fhir/Patient/{pid}")
        assert r.status_code == 503 and "audit" in r.json()["issue"][0]["diagnostics"]
        assert r.headers["retry-after"]
        assert pid not in r.text
        app.state.audit = Broken()
        assert (await client.get(f"/fhir/Patient/{unique()}")).status_code == 404
        assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 503
    finally:
        app.state.audit = trail
    assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 200
