"""`ehrhub demo` from the outside: simulated hospitals fill a real hub through `ehrhub sync`."""

import csv
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
from live import start_hub, stop_hub, wait_for_output

from adapters.base import CCCD_SYSTEM, FACILITY_SYSTEM
from adapters.simulate.facilities import facilities
from adapters.simulate.population import population_sizes, visits
from hub.store.embedded import free_port

FACILITIES, SCALE, DAYS, UNTIL = 4, 0.15, 30, date(2026, 11, 1)
DEMO_SECONDS = 300.0


def demo_flags(port: int, data: Path, live_seconds: float) -> list[str]:
    """Return the command line of a small demo on a port and data folder."""
    return [
        "--port", str(port), "--data-dir", str(data), "--facilities", str(FACILITIES),
        "--scale", str(SCALE), "--days", str(DAYS), "--until", UNTIL.isoformat(),
        "--workers", "2", "--live-seconds", str(live_seconds),
    ]  # fmt: skip


def held(log_line: re.Match[str]) -> dict[str, int]:
    """Return the counts of the demo's `the hub holds:` line."""
    return {kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", log_line[1])}


def test_the_demo_fills_the_hub_from_every_format_and_a_second_run_duplicates_nothing(
    tmp_path: Path,
) -> None:
    expected = facilities(FACILITIES, 1, SCALE)
    sizes = population_sizes(expected)
    made = [v for f in expected for v in visits(f, sizes, 1, UNTIL, DAYS)]
    patients = {(v.facility.code, v.person.cccd) for v in made}
    assert {f.format for f in expected} == {"xml130", "hl7v2", "csv"}
    port, data, log = free_port(), tmp_path / "data", tmp_path / "demo.log"
    base = f"http://127.0.0.1:{port}/fhir"

    hub = start_hub(log, *demo_flags(port, data, 0), command="demo")
    try:
        done = wait_for_output(hub, log, r"demo: done: .*; (\d+) facilities with problems", 300)
        assert done[1] == "0", log.read_text()
        first = held(wait_for_output(hub, log, r"demo: the hub holds: (.*)"))
        with httpx.Client(base_url=base) as client:
            registry = list(csv.DictReader((data / "demo" / "facilities.csv").open()))
            assert [r["code"] for r in registry] == [f.code for f in expected]
            for row in registry:
                found = client.get(
                    "Organization", params={"identifier": f"{FACILITY_SYSTEM}|{row['code']}"}
                ).json()
                assert [e["resource"]["name"] for e in found["entry"]] == [row["name"]]
            person = Counter(v.person.cccd for v in made).most_common(1)[0][0]
            linked = client.get("Patient", params={"identifier": f"{CCCD_SYSTEM}|{person}"}).json()
            assert linked["entry"], f"no Patient with the citizen ID {person}"
            # Each facility synced with its own client: its token sees its own visits only.
            saved = data / "demo" / "credentials.json"
            assert saved.stat().st_mode & 0o077 == 0
            credentials = json.loads(saved.read_text())
            clients = {c["facility"]: c for c in credentials if c["role"] == "facility"}
            assert sorted(clients) == sorted(f.code for f in expected)
            one = expected[0]
            token = client.post(
                f"http://127.0.0.1:{port}/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": clients[one.code]["client_id"],
                    "client_secret": clients[one.code]["client_secret"],
                },
            ).json()["access_token"]
            own = client.get(
                "Encounter",
                params={"_summary": "count"},
                headers={"authorization": f"Bearer {token}"},
            ).json()["total"]
            assert own == sum(v.facility.code == one.code for v in made)
            (clinician,) = [c for c in credentials if c["role"] == "clinician"]
            login = client.post(
                f"http://127.0.0.1:{port}/auth/login",
                data={"username": clinician["username"], "password": clinician["client_secret"]},
            )
            assert login.status_code == 200, login.text
            assert f"clinician  {clinician['username']}" in log.read_text()
    finally:
        assert stop_hub(hub) == 0, log.read_text()
    assert first["Organization"] == FACILITIES
    assert first["Patient"] == len(patients)
    assert first["Encounter"] == len(made)
    assert first["Observation"] > 0 and first["Condition"] >= len(made)

    # Again on the same data, then one live round: the backfill is matched, the round is new.
    hub = start_hub(log, *demo_flags(port, data, 1), command="demo")
    try:
        wait_for_output(hub, log, r"demo: done: .*; 0 facilities with problems", DEMO_SECONDS)
        assert held(wait_for_output(hub, log, r"demo: the hub holds: (.*)")) == first
        wait_for_output(hub, log, r"demo: live round 1: ", DEMO_SECONDS)
        with httpx.Client(base_url=base) as client:
            total = client.get("Encounter", params={"_summary": "count"}).json()["total"]
        assert total > first["Encounter"]
    finally:
        assert stop_hub(hub) == 0, log.read_text()
