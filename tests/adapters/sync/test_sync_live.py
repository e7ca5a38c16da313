"""`ehrhub sync` as a hospital runs it, against a real `ehrhub serve`: killed mid-run, the hub
stopped mid-run, and the hub ends with exactly the records of the file, once each."""

import csv
import io
import json
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live import (
    REPO,
    bearer_of,
    clean_env,
    create_client,
    ehrhub,
    run_ehrhub,
    start_hub,
    stop_hub,
    sync_credentials,
    wait_for_output,
)

from adapters.base import Facility
from adapters.sync.outbox import Outbox
from adapters.xml130.generate import episodes, facility_code
from hub.store.embedded import free_port

EPISODES = 40
SEED = 130_777
FACILITY = facility_code(SEED)
SYNC_SECONDS = 60.0
# Retries a few times a second, so that the test does not wait for long backoffs.
FAST_RETRIES = {"sync_backoff_base_seconds": "0.2", "sync_backoff_max_seconds": "1"}


@pytest.fixture(scope="module")
def claims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a generated XML130 submission of EPISODES episodes."""
    path = tmp_path_factory.mktemp("xml130") / "claims.xml"
    subprocess.run(
        ehrhub_module("adapters.xml130.generate", "--episodes", str(EPISODES), "--out", str(path))
        + ["--seed", str(SEED)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return path


def ehrhub_module(module: str, *args: str) -> list[str]:
    """Return the command line running a module of this checkout."""
    return [ehrhub()[0], "-m", module, *args]


class Hub:
    """A real `ehrhub serve` on the session's database, restartable on the same port and data."""

    def __init__(self, mongodb_uri: str, log_dir: Path) -> None:
        self.mongodb_uri = mongodb_uri
        self.log_dir = log_dir
        self.port = free_port()
        self.database = f"test_sync_{uuid.uuid4().hex[:12]}"
        self.fhir = f"http://127.0.0.1:{self.port}/fhir"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        # The system of the facility that the claims come from, registered on the database.
        self.client = create_client(
            "--role", "facility", "--facility", FACILITY, "--mongodb-uri", mongodb_uri,
            database=self.database,
        )  # fmt: skip

    def start(self) -> None:
        """Start the hub and wait until it serves."""
        self.starts += 1
        log = self.log_dir / f"hub{self.starts}.log"
        args = ("--port", str(self.port), "--mongodb-uri", self.mongodb_uri)
        self.process = start_hub(log, *args, database=self.database)
        wait_for_output(self.process, log, r"Application startup complete")

    def stop(self) -> None:
        """Stop the hub as a service manager does."""
        if self.process is not None and self.process.poll() is None:
            stop_hub(self.process)


@pytest.fixture
def hub(mongodb_uri: str, tmp_path: Path) -> Iterator[Hub]:
    """Run a hub with a database of the test's own."""
    found = Hub(mongodb_uri, tmp_path)
    found.start()
    try:
        yield found
    finally:
        found.stop()


def start_sync(claims: Path, hub: Hub, outbox: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `ehrhub sync xml130` in the background, its output going to a file."""
    args = ("sync", "xml130", str(claims), "--hub", hub.fhir, "--outbox", str(outbox))
    with log.open("ab") as output:
        return subprocess.Popen(
            [*ehrhub(*args), "--batch", "10"],
            cwd=REPO,
            env=clean_env(**FAST_RETRIES, **sync_credentials(hub.client)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def sent(outbox: Path) -> int:
    """Return how many records the outbox says are sent, read as another process would."""
    if not outbox.exists():
        return 0
    with sqlite3.connect(outbox, timeout=10) as db:
        try:
            row = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'sent'").fetchone()
        except sqlite3.OperationalError:  # the table is not created yet
            return 0
    return int(row[0])


def retried(outbox: Path) -> int:
    """Return the most attempts a pending record has failed, read as another process would."""
    with sqlite3.connect(outbox, timeout=10) as db:
        (found,) = db.execute("SELECT MAX(attempts) FROM outbox WHERE state = 'pending'").fetchone()
    return int(found or 0)


def wait_until_retried(outbox: Path, attempts: int, sync: subprocess.Popen[bytes]) -> None:
    """Wait until a pending record has failed `attempts` times, failing if the sync ends first."""
    deadline = time.monotonic() + SYNC_SECONDS
    while retried(outbox) < attempts:
        assert sync.poll() is None, "the sync ended instead of retrying"
        assert time.monotonic() < deadline, "the sync did not retry in time"
        time.sleep(0.05)


def wait_until_sent(outbox: Path, count: int, sync: subprocess.Popen[bytes]) -> None:
    """Wait until the sync has sent at least `count` records, failing if it ends first."""
    deadline = time.monotonic() + SYNC_SECONDS
    while sent(outbox) < count:
        assert sync.poll() is None, "the sync ended before the test could interrupt it"
        assert time.monotonic() < deadline, "the sync sent too little in time"
        time.sleep(0.05)


def assert_hub_holds_each_episode_once(hub: Hub) -> None:
    """Check the hub has exactly one Encounter per episode of the file, and no other."""
    visit = Facility(FACILITY).system("visit")
    headers = bearer_of(hub.fhir.removesuffix("/fhir"), hub.client)
    with httpx.Client(timeout=30, headers=headers) as client:
        total = client.get(f"{hub.fhir}/Encounter", params={"_summary": "count"}).json()
        assert total["total"] == EPISODES
        for tables in episodes(EPISODES, SEED):
            ma_lk = tables["XML1"][0]["MA_LK"]
            found = client.get(f"{hub.fhir}/Encounter", params={"identifier": f"{visit}|{ma_lk}"})
            assert len(found.json().get("entry", [])) == 1, ma_lk


def test_a_sync_killed_mid_run_finishes_on_restart_without_loss_or_duplicates(
    claims: Path, hub: Hub, tmp_path: Path
) -> None:
    outbox, log = tmp_path / "outbox.sqlite", tmp_path / "sync.log"
    sync = start_sync(claims, hub, outbox, log)
    wait_until_sent(outbox, 12, sync)
    sync.send_signal(signal.SIGKILL)
    assert sync.wait(10) == -signal.SIGKILL
    assert 12 <= sent(outbox) < EPISODES

    again = start_sync(claims, hub, outbox, log)
    assert again.wait(SYNC_SECONDS) == 0, log.read_text()
    output = log.read_text()
    assert f"{EPISODES} records parsed" in output
    assert_hub_holds_each_episode_once(hub)
    status = run_ehrhub("sync", "status", "--outbox", str(outbox), "--json")
    assert json.loads(status.stdout)["counts"] == {
        "pending": 0,
        "sent": EPISODES,
        "rejected": 0,
        "refused": 0,
    }


def test_a_sync_outlives_the_hub_stopping_mid_run(claims: Path, hub: Hub, tmp_path: Path) -> None:
    outbox, log = tmp_path / "outbox.sqlite", tmp_path / "sync.log"
    sync = start_sync(claims, hub, outbox, log)
    wait_until_sent(outbox, 12, sync)
    hub.stop()
    # The sync keeps failing and backing off while the hub is away: twice, before it is back.
    wait_until_retried(outbox, 2, sync)
    assert sync.poll() is None
    assert sent(outbox) < EPISODES
    hub.start()
    assert sync.wait(SYNC_SECONDS) == 0, log.read_text()
    with sqlite3.connect(outbox) as db:
        (retried,) = db.execute("SELECT MAX(attempts) FROM outbox").fetchone()
    assert retried >= 1  # the record in flight when the hub went away was sent again
    assert_hub_holds_each_episode_once(hub)


def test_a_refusal_by_the_real_hub_is_listed_with_its_outcome_and_blocks_nothing(
    claims: Path, hub: Hub, tmp_path: Path
) -> None:
    outbox_path = tmp_path / "outbox.sqlite"
    outbox = Outbox(outbox_path)
    bad = {"resourceType": "Patient", "birthDate": "31/12/1990"}
    entry = {
        "fullUrl": "urn:uuid:1",
        "resource": bad,
        "request": {"method": "POST", "url": "Patient"},
    }
    outbox.enqueue_bundle(
        "test#bad",
        "a bad record",
        {"resourceType": "Bundle", "type": "transaction", "entry": [entry]},
    )
    outbox.enqueue_rejection("test#rejected", "claims.xml HOSO 9", "XML1 NGAY_VAO: not a date")
    outbox.close()
    args = ("sync", "xml130", str(claims), "--hub", hub.fhir, "--outbox", str(outbox_path))
    done = subprocess.run(
        ehrhub(*args),
        cwd=REPO,
        env=clean_env(**sync_credentials(hub.client)),
        capture_output=True,
        text=True,
        timeout=SYNC_SECONDS,
    )
    assert done.returncode == 3, done.stderr
    assert "1 refused by the hub" in done.stdout
    assert_hub_holds_each_episode_once(hub)

    status = run_ehrhub("sync", "status", "--outbox", str(outbox_path), "--json")
    assert json.loads(status.stdout)["counts"] == {
        "pending": 0,
        "sent": EPISODES,
        "rejected": 1,
        "refused": 1,
    }
    listed = run_ehrhub("sync", "rejected", "--outbox", str(outbox_path), "--csv")
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["source"], r["state"]) for r in rows] == [
        ("a bad record", "refused"),
        ("claims.xml HOSO 9", "rejected"),
    ]
    assert rows[0]["http_status"].startswith("4")
    assert "birthDate" in rows[0]["reason"]
    assert json.loads(rows[0]["outcome"])["resourceType"] == "OperationOutcome"
    assert rows[1]["reason"] == "XML1 NGAY_VAO: not a date"
    text = run_ehrhub("sync", "rejected", "--outbox", str(outbox_path))
    assert "a bad record: refused 4" in text.stdout


def test_status_of_a_missing_outbox_says_so(tmp_path: Path) -> None:
    done = run_ehrhub("sync", "status", "--outbox", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2
    assert "no outbox at" in done.stderr


def test_formats_say_what_they_need(claims: Path, tmp_path: Path) -> None:
    """Formats whose records do not name their facility ask for --facility; a CSV export is a
    folder with its mapping file."""
    outbox = str(tmp_path / "o.sqlite")
    for name in ("hl7v2", "fhir", "csv"):
        done = run_ehrhub("sync", name, str(claims), "--hub", "http://x/fhir", "--outbox", outbox)
        assert done.returncode == 2
        assert "--facility" in done.stderr
    done = run_ehrhub(
        "sync", "csv", str(tmp_path), "--hub", "http://x/fhir", "--facility", "79001",
        "--outbox", outbox,
    )  # fmt: skip
    assert done.returncode == 2
    assert "mapping.toml" in done.stderr
