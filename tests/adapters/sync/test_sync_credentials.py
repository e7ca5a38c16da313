"""`ehrhub sync` against a hub that demands tokens: client credentials from `ehrhub admin`."""

import json
import uuid
from pathlib import Path

import httpx
from live import run_ehrhub, start_hub, stop_hub, wait_for_output

from adapters.base import FACILITY_SYSTEM
from adapters.simulate.sample import sample_bundles
from hub.store.embedded import free_port

FACILITY = "79555"


def ndjson(path: Path) -> Path:
    """Write a few sample resources as FHIR NDJSON (no transaction of their own)."""
    bundle = sample_bundles(n_patients=1, seed=55)[0]
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    patient = {k: v for k, v in patient.items() if k != "managingOrganization"}
    patient["id"] = f"p-{uuid.uuid4().hex[:8]}"
    path.write_text(json.dumps(patient, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_sync_sends_with_a_facility_token_and_says_why_it_cannot_without_one(
    mongodb_uri: str, tmp_path: Path
) -> None:
    port, database = free_port(), f"test_sync_auth_{uuid.uuid4().hex[:12]}"
    fhir = f"http://127.0.0.1:{port}/fhir"
    log = tmp_path / "hub.log"
    settings = {"database": database, "auth_required": "true"}
    hub = start_hub(log, "--port", str(port), "--mongodb-uri", mongodb_uri, **settings)
    try:
        wait_for_output(hub, log, r"Application startup complete")
        made = run_ehrhub(
            "admin", "create-client", "--role", "facility", "--facility", FACILITY, "--json",
            "--mongodb-uri", mongodb_uri, database=database,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        client = json.loads(made.stdout.strip().splitlines()[-1])
        data = ndjson(tmp_path / "patients.ndjson")
        flags = ["--hub", fhir, "--facility", FACILITY]

        refused = run_ehrhub("sync", "fhir", str(data), *flags, "--outbox", str(tmp_path / "a"))
        assert refused.returncode == 1
        assert "401" in refused.stderr and "nothing was lost" in refused.stderr

        wrong = run_ehrhub(
            "sync", "fhir", str(data), *flags, "--outbox", str(tmp_path / "b"),
            "--client-id", client["client_id"], "--client-secret", "not-the-secret",
        )  # fmt: skip
        assert wrong.returncode == 1
        assert f"refused client {client['client_id']}: 401" in wrong.stderr

        sent = run_ehrhub(
            "sync", "fhir", str(data), *flags, "--outbox", str(tmp_path / "a"),
            sync_client_id=client["client_id"], sync_client_secret=client["client_secret"],
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert "1 sent" in sent.stdout
        token = httpx.post(
            f"http://127.0.0.1:{port}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
        ).json()["access_token"]
        found = httpx.get(
            f"{fhir}/Organization",
            params={"identifier": f"{FACILITY_SYSTEM}|{FACILITY}"},
            headers={"authorization": f"Bearer {token}"},
        ).json()
        assert len(found["entry"]) == 1
    finally:
        assert stop_hub(hub) == 0, log.read_text()
