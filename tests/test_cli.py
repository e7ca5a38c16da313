"""Test `ehrhub` from the outside: run it as an operator would and watch what it prints."""

import json
import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from live import bearer_of, create_client, run_ehrhub, start_hub, stop_hub, wait_for_output
from pymongo import MongoClient
from pymongo.errors import OperationFailure
from support import wait_gone

from adapters.simulate.sample import sample_bundles
from hub import __version__
from hub.store.embedded import free_port, with_credentials


@pytest.fixture
def hub_log(tmp_path: Path) -> Path:
    """Return the file that a hub started by the test writes its output to."""
    return tmp_path / "hub.log"


def test_serve_runs_the_embedded_database_and_stops_it_on_sigterm(
    tmp_path: Path, hub_log: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = start_hub(
        hub_log, "--port", str(port), "--data-dir", str(tmp_path / "data"), "--load-sample"
    )
    try:
        database_pid = int(wait_for_output(hub, hub_log, r"embedded database pid=(\d+)")[1])
        database = wait_for_output(hub, hub_log, r"uri=(mongodb://ehrhub:\*\*\*@[^ ]+) ")
        credentials = tmp_path / "data" / "db" / "hub-credentials.json"
        assert f"its password is in {credentials} (mode 0600" in hub_log.read_text()
        assert json.loads(credentials.read_text())["password"] not in hub_log.read_text()
        with MongoClient(with_credentials(database[1], None), serverSelectionTimeoutMS=5000) as c:
            with pytest.raises(OperationFailure, match="requires authentication"):
                c.hub.resources.find_one()
        loaded = wait_for_output(hub, hub_log, r"sample data: (\d+) resources created.*")
        assert int(loaded[1]) > 0
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert f"{base}/fhir/metadata" in hub_log.read_text()
        # Each sample record is its facility's: a client of one of them reads its patients.
        code = re.search(r"held by facilities (\w+)", loaded[0])
        assert code, loaded[0]
        facility = create_client(
            "--role", "facility", "--facility", code[1], "--data-dir", str(tmp_path / "data")
        )
        found = httpx.get(f"{base}/fhir/Patient", headers=bearer_of(base, facility))
        assert found.status_code == 200 and found.json().get("entry"), found.text
        assert httpx.get(f"{base}/fhir/Patient").status_code == 401
    finally:
        status = stop_hub(hub)

    assert status == 0, hub_log.read_text()
    assert "EHRHUB_AUTH_REQUIRED is false" not in hub_log.read_text()
    assert wait_gone(database_pid), f"the embedded database (pid {database_pid}) outlived the hub"
    assert (tmp_path / "data" / "db").is_dir()


def test_load_posts_each_file_and_reports_its_status(
    tmp_path: Path, hub_log: Path, mongodb_uri: str
) -> None:
    port = free_port()
    database = f"test_cli_{uuid.uuid4().hex[:12]}"
    hub = start_hub(
        hub_log, "--port", str(port), "--mongodb-uri", mongodb_uri, "--data-dir",
        str(tmp_path / "data"), database=database,
    )  # fmt: skip
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(sample_bundles(n_patients=1, seed=int(time.time()))[0]))
    not_a_bundle = tmp_path / "patient.json"
    not_a_bundle.write_text(json.dumps({"resourceType": "Patient"}))
    code = next(
        i["value"]
        for e in json.loads(bundle.read_text())["entry"]
        if e["resource"]["resourceType"] == "Organization"
        for i in e["resource"]["identifier"]
    )
    try:
        wait_for_output(hub, hub_log, r"Application startup complete")
        facility = create_client(
            "--role", "facility", "--facility", code, "--mongodb-uri", mongodb_uri,
            database=database,
        )  # fmt: skip
        hub_url = f"http://127.0.0.1:{port}"
        without = run_ehrhub("load", str(bundle), "--hub", hub_url)
        loaded = run_ehrhub(
            "load", str(bundle), str(not_a_bundle), "--hub", hub_url,
            "--client-id", facility["client_id"], "--client-secret", facility["client_secret"],
        )  # fmt: skip
    finally:
        status = stop_hub(hub)

    assert "embedded database" not in hub_log.read_text()
    assert f"{bundle}: 401 Unauthorized" in without.stdout and without.returncode == 1
    assert "--client-id" in without.stderr
    assert f"{bundle}: 200 OK" in loaded.stdout
    assert "201 Created" in loaded.stdout
    assert f"{not_a_bundle}: not a FHIR Bundle of type transaction or batch" in loaded.stderr
    assert loaded.returncode == 1
    assert status == 0


def test_serve_warns_loudly_when_tokens_are_switched_off(tmp_path: Path, hub_log: Path) -> None:
    port = free_port()
    data = ("--data-dir", str(tmp_path / "data"))
    hub = start_hub(hub_log, "--port", str(port), *data, auth_required="false")
    try:
        wait_for_output(hub, hub_log, r"Application startup complete")
        open_hub = httpx.get(f"http://127.0.0.1:{port}/fhir/Patient")
    finally:
        status = stop_hub(hub)

    assert status == 0, hub_log.read_text()
    assert "WARNING: EHRHUB_AUTH_REQUIRED is false" in hub_log.read_text()
    assert open_hub.status_code == 200


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_ehrhub("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "data").exists(), "no database is started for a hub that cannot listen"


def test_load_says_when_the_hub_is_unreachable(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(sample_bundles(n_patients=1)[0]))

    result = run_ehrhub("load", str(bundle), "--hub", f"http://127.0.0.1:{free_port()}")

    assert result.returncode == 1
    assert "cannot reach the hub" in result.stderr


@pytest.mark.parametrize(
    ("args", "settings", "status", "says"),
    [
        ((), {}, 2, "required: COMMAND"),
        (("version",), {}, 0, f"ehrhub {__version__}"),
        (("serve",), {"port": "eighty"}, 2, "invalid setting port (EHRHUB_PORT)"),
        (("serve", "--port", "70000"), {}, 2, "port 70000 is not between 1 and 65535"),
    ],
)
def test_exit_status_and_message(
    args: tuple[str, ...], settings: dict[str, str], status: int, says: str
) -> None:
    result = run_ehrhub(*args, **settings)

    assert result.returncode == status
    assert says in result.stdout + result.stderr
