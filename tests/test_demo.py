"""`ehrhub demo` from the outside: simulated hospitals fill a real hub through `ehrhub sync`,
and the simulated people write their own Consents through their own logins; every read here
carries a token, as the hub requires."""

import csv
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
from live import start_hub, stop_hub, wait_for_output

from adapters.base import CCCD_SYSTEM, FACILITY_SYSTEM
from adapters.simulate.consents import choices, consent_identifier
from adapters.simulate.facilities import facilities
from adapters.simulate.population import population_sizes, visits
from hub.store.embedded import free_port

FACILITIES, SCALE, DAYS, UNTIL = 4, 0.15, 30, date(2026, 11, 1)
DEMO_SECONDS = 300.0
HOLDS = (
    r"demo: the hub holds: (.*) \(as the facilities count their own records\); "
    r"and (\d+) Consents the people wrote themselves"
)
CONSENTS = r"demo: consents: (\d+) written by the people themselves, (\d+) already held"


def demo_flags(port: int, data: Path, live_seconds: float) -> list[str]:
    """Return the command line of a small demo on a port and data folder."""
    return [
        "--port", str(port), "--data-dir", str(data), "--facilities", str(FACILITIES),
        "--scale", str(SCALE), "--days", str(DAYS), "--until", UNTIL.isoformat(),
        "--workers", "2", "--live-seconds", str(live_seconds),
    ]  # fmt: skip


def held(log_line: re.Match[str]) -> tuple[dict[str, int], int]:
    """Return the counts of the demo's `the hub holds:` line: what the facilities hold, by
    type, and how many Consents the people wrote."""
    counts = {kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", log_line[1])}
    return counts, int(log_line[2])


def bearer(client: httpx.Client, port: int, credential: dict[str, str]) -> dict[str, str]:
    """Return the Authorization header of a demo credential's token."""
    response = client.post(
        f"http://127.0.0.1:{port}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def person_headers(
    client: httpx.Client, port: int, admin: dict[str, str], cccd: str
) -> dict[str, str]:
    """Return the Authorization header of a person's new login, which an admin makes as the
    demo does (`POST /admin/clients`, role patient, bound to their citizen ID)."""
    made = client.post(
        f"http://127.0.0.1:{port}/admin/clients",
        json={"role": "patient", "patient": cccd, "name": "test"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    return bearer(client, port, made.json())


def facility_headers(client: httpx.Client, port: int, data: Path) -> dict[str, dict[str, str]]:
    """Return each facility's Authorization header, by facility code."""
    credentials = json.loads((data / "demo" / "credentials.json").read_text())
    return {c["facility"]: bearer(client, port, c) for c in credentials if c["role"] == "facility"}


def test_the_demo_fills_the_hub_from_every_format_and_a_second_run_duplicates_nothing(
    tmp_path: Path,
) -> None:
    expected = facilities(FACILITIES, 1, SCALE)
    sizes = population_sizes(expected)
    made = [v for f in expected for v in visits(f, sizes, 1, UNTIL, DAYS)]
    patients = {(v.facility.code, v.person.cccd) for v in made}
    consents = choices(made, 1)
    assert {f.format for f in expected} == {"xml130", "hl7v2", "csv"}
    assert {c.kind for c in consents} == {"share", "sensitive"}
    port, data, log = free_port(), tmp_path / "data", tmp_path / "demo.log"
    base = f"http://127.0.0.1:{port}/fhir"

    hub = start_hub(log, *demo_flags(port, data, 0), command="demo")
    try:
        done = wait_for_output(hub, log, r"demo: done: .*; (\d+) facilities with problems", 300)
        assert done[1] == "0", log.read_text()
        first, people_wrote = held(wait_for_output(hub, log, HOLDS))
        written = wait_for_output(hub, log, CONSENTS)
        assert (int(written[1]), int(written[2])) == (len(consents), 0), log.read_text()
        # Every record synced was checked against the national profiles, as the ministry sees.
        quality = wait_for_output(
            hub,
            log,
            r"demo: data quality \(national profiles\): (\d+) records checked, (\d+)% valid",
        )
        assert int(quality[1]) >= sum(first.values()) and 0 < int(quality[2]) <= 100
        # The demo clinician sees the records of other facilities of the person whose consent
        # lets them, and only their own facility's of the person without a consent.
        seen = wait_for_output(
            hub,
            log,
            r"sees (\d+) resources from (\d+) facilit.*\n.*\n.*sees (\d+) "
            r"resources from (\d+) facilit",
        )
        assert int(seen[2]) >= 2 and int(seen[4]) == 1, log.read_text()
        assert int(seen[1]) > 0 and int(seen[3]) > 0
        with httpx.Client(base_url=base) as client:
            # Each facility synced with its own client: its token sees its own visits only.
            saved = data / "demo" / "credentials.json"
            assert saved.stat().st_mode & 0o077 == 0
            credentials = json.loads(saved.read_text())
            tokens = facility_headers(client, port, data)
            assert sorted(tokens) == sorted(f.code for f in expected)
            registry = list(csv.DictReader((data / "demo" / "facilities.csv").open()))
            assert [r["code"] for r in registry] == [f.code for f in expected]
            for row in registry:
                found = client.get(
                    "Organization",
                    params={"identifier": f"{FACILITY_SYSTEM}|{row['code']}"},
                    headers=tokens[row["code"]],
                ).json()
                assert [e["resource"]["name"] for e in found["entry"]] == [row["name"]]
            person, _ = Counter(v.person.cccd for v in made).most_common(1)[0]
            where = next(v.facility.code for v in made if v.person.cccd == person)
            linked = client.get(
                "Patient",
                params={"identifier": f"{CCCD_SYSTEM}|{person}"},
                headers=tokens[where],
            ).json()
            assert linked["entry"], f"no Patient with the citizen ID {person}"
            one = expected[0]
            own = client.get(
                "Encounter", params={"_summary": "count"}, headers=tokens[one.code]
            ).json()["total"]
            assert own == sum(v.facility.code == one.code for v in made)
            # No facility holds, or sees, a Consent: the people wrote them all.
            for code, headers in tokens.items():
                found = client.get("Consent", params={"_summary": "count"}, headers=headers)
                assert found.json()["total"] == 0, (code, found.text)
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
    assert first["Consent"] == 0 and people_wrote == len(consents)

    # Again on the same data, then one live round: the backfill is matched, the round is new.
    hub = start_hub(log, *demo_flags(port, data, 1), command="demo")
    try:
        wait_for_output(hub, log, r"demo: done: .*; 0 facilities with problems", DEMO_SECONDS)
        assert held(wait_for_output(hub, log, HOLDS)) == (first, len(consents))
        again = wait_for_output(hub, log, CONSENTS)
        assert (int(again[1]), int(again[2])) == (0, len(consents))
        wait_for_output(hub, log, r"demo: live round 1: ", DEMO_SECONDS)
        with httpx.Client(base_url=base) as client:
            # Each Consent is the person's, held once after two runs, about one of their own
            # Patient records, and claims no facility: read with the person's own login.
            credentials = json.loads((data / "demo" / "credentials.json").read_text())
            (admin,) = [c for c in credentials if c["role"] == "admin"]
            admin_headers = bearer(client, port, admin)
            people = {
                cccd: person_headers(client, port, admin_headers, cccd)
                for cccd in {c.cccd for c in consents}
            }
            for c in consents:
                identifier = consent_identifier(c)
                found = client.get(
                    "Consent",
                    params={"identifier": f"{identifier['system']}|{identifier['value']}"},
                    headers=people[c.cccd],
                ).json()
                [consent] = [e["resource"] for e in found["entry"]]
                assert consent["status"] == "active"
                assert not {"tag", "source"} & set(consent["meta"]), consent["meta"]
                subject = client.get(consent["patient"]["reference"], headers=people[c.cccd])
                assert subject.status_code == 200, subject.text
                assert {"system": CCCD_SYSTEM, "value": c.cccd} in [
                    {"system": i.get("system"), "value": i.get("value")}
                    for i in subject.json()["identifier"]
                ]
            tokens = facility_headers(client, port, data)
            total = sum(
                client.get("Encounter", params={"_summary": "count"}, headers=h).json()["total"]
                for h in tokens.values()
            )
        assert total > first["Encounter"]
    finally:
        assert stop_hub(hub) == 0, log.read_text()
