"""`ehrhub admin` on the embedded database's data folder, with the hub stopped and running:
a fresh installation bootstraps its first admin before the hub ever starts."""

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
from live import run_ehrhub, start_hub, stop_hub, wait_for_output

from hub.store.embedded import ADDRESS_FILE, free_port

TOKEN_FORM = {"grant_type": "client_credentials"}


def created(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def token(base: str, client: dict[str, Any]) -> httpx.Response:
    form = TOKEN_FORM | {
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
    }
    return httpx.post(f"{base}/auth/token", data=form)


def test_admin_with_the_hub_stopped_then_running(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    stopped = run_ehrhub("admin", "create-client", "--role", "admin", "--json", "--data-dir", data)
    first_admin = created(stopped)
    assert "started its embedded database" in stopped.stderr

    log = tmp_path / "hub.log"
    hub = start_hub(log, "--port", str(port), "--data-dir", data, auth_required="true")
    try:
        wait_for_output(hub, log, r"Application startup complete")
        assert (tmp_path / "data" / ADDRESS_FILE).exists()
        issued = token(base, first_admin)
        assert issued.status_code == 200, issued.text

        running = run_ehrhub(
            "admin",
            "create-client",
            "--role",
            "facility",
            "--facility",
            "01001",
            "--json",
            "--data-dir",
            data,
        )
        facility = created(running)
        assert "using the database of the hub running" in running.stderr
        facility_token = token(base, facility)
        assert facility_token.status_code == 200, facility_token.text
        headers = {"authorization": f"Bearer {facility_token.json()['access_token']}"}
        assert httpx.get(f"{base}/fhir/Patient", headers=headers).status_code == 200
        assert httpx.get(f"{base}/fhir/Patient").status_code == 401

        revoked = run_ehrhub("admin", "revoke-client", facility["client_id"], "--data-dir", data)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{base}/fhir/Patient", headers=headers).status_code == 401
    finally:
        status = stop_hub(hub)

    assert status == 0, log.read_text()
    assert not (tmp_path / "data" / ADDRESS_FILE).exists(), "the address file outlived the hub"
    listed = run_ehrhub("admin", "list-clients", "--json", "--data-dir", data)
    assert listed.returncode == 0, listed.stderr
    rows = {row["client_id"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {first_admin["client_id"], facility["client_id"]}
    assert rows[facility["client_id"]]["revoked_at"] is not None
    assert rows[first_admin["client_id"]]["revoked_at"] is None


def test_a_stale_address_file_is_not_trusted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ADDRESS_FILE).write_text(
        json.dumps({"uri": f"mongodb://127.0.0.1:{free_port()}/", "pid": 999_999_999})
    )

    result = run_ehrhub("admin", "list-clients", "--data-dir", str(data))

    assert result.returncode == 0, result.stderr
    assert "started its embedded database" in result.stderr
