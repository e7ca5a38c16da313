"""`ehrhub demo`: synthetic hospitals export their native formats and sync them into the hub.

Once the hub is ready: the facilities are registered (their Organizations, as the ministry's
registry would), each writes its export (XML130, HL7 v2 or CSV) under the demo folder, and
each export goes to the hub through `ehrhub sync`, run as its own process as a hospital would
run it, a few at a time. Then the people who consent write their privacy Consents through
logins of their own, which the demo's admin makes them (`adapters.simulate.consents`), and
the demo clinician's view of two people shows what the Consents let them see. Every
`live_seconds`, a few facilities send the day's new visits, so the hub keeps receiving data.
Running the demo again on the same data sends the same records, which the hub matches instead
of duplicating.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from adapters.base import CCCD_SYSTEM, FACILITY_SYSTEM, TZ_VN, identifier_query
from adapters.simulate.consents import (
    PEOPLE_AT_ONCE,
    SHARE,
    Choice,
    Written,
    choices,
    write_consents,
)
from adapters.simulate.csv_export import write_csv
from adapters.simulate.facilities import CSV, HL7V2, SimFacility, facilities
from adapters.simulate.hl7v2_export import write_hl7v2
from adapters.simulate.population import Visit, population_sizes, visits
from adapters.simulate.xml130_export import write_xml130
from adapters.sync.credentials import Credentials

FHIR_JSON = "application/fhir+json"
# Resource types counted in the summary, in the order a clinician reads a record.
SUMMARY_TYPES = (
    "Organization",
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Procedure",
    "Consent",
)
READY_POLL_SECONDS = 0.2
# The line `ehrhub sync` ends with, after the file's name.
SYNC_SUMMARY = re.compile(r"(\d+) records parsed.*")
SYNC_TIMEOUT_SECONDS = 1800.0
LIVE_VISIT, LIVE_GAP = timedelta(hours=2), timedelta(minutes=7)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo simulates: how many facilities, how busy, over which days."""

    folder: Path
    facilities: int = 24
    scale: float = 1.0
    seed: int = 1
    days: int = 90
    until: date | None = None
    workers: int = 4
    live_seconds: float = 60.0
    live_facilities: int = 3
    # Client id and secret per facility code, which its `ehrhub sync` sends and with which
    # its Organization is registered; none: the hub is called without tokens.
    clients: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    """How one facility's export went."""

    facility: SimFacility
    records: int
    status: int
    summary: str
    seconds: float


def write_export(folder: Path, facility: SimFacility, items: Sequence[Visit], name: str) -> Path:
    """Write a facility's visits in its own format under folder; return what to sync."""
    folder.mkdir(parents=True, exist_ok=True)
    if facility.format == HL7V2:
        path = folder / f"{name}.hl7"
        write_hl7v2(path, items)
    elif facility.format == CSV:
        path = folder / name
        write_csv(path, items)
    else:
        path = folder / f"{name}.xml"
        write_xml130(path, facility.code, items)
    return path


def sync_command(facility: SimFacility, path: Path, fhir_base: str, outbox: Path) -> list[str]:
    """Return the `ehrhub sync` command line that sends a facility's export."""
    return [
        sys.executable,
        "-m",
        "hub.cli",
        "sync",
        facility.format,
        str(path),
        "--hub",
        fhir_base,
        "--facility",
        facility.code,
        "--outbox",
        str(outbox),
    ]


def sync_export(
    facility: SimFacility, path: Path, fhir_base: str, options: DemoOptions
) -> SyncResult:
    """Run `ehrhub sync` for one facility's export, with the facility's client credentials
    when it has some (in the environment, not on the command line), and say how it went."""
    started = time.monotonic()
    outbox = options.folder / "outbox" / f"{facility.code}.sqlite"
    outbox.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if facility.code in options.clients:
        client_id, secret = options.clients[facility.code]
        env |= {"EHRHUB_SYNC_CLIENT_ID": client_id, "EHRHUB_SYNC_CLIENT_SECRET": secret}
    done = subprocess.run(
        sync_command(facility, path, fhir_base, outbox),
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT_SECONDS,
        env=env,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    found = next((m for line in reversed(lines) if (m := SYNC_SUMMARY.search(line))), None)
    if found:
        records, summary = int(found[1]), found[0]
    else:
        records, summary = 0, lines[-1] if lines else f"exit status {done.returncode}"
    return SyncResult(facility, records, done.returncode, summary, time.monotonic() - started)


@dataclass(frozen=True)
class Clinician:
    """The demo clinician: the facility they work at, and their credentials."""

    facility: str
    credentials: Credentials


def callers_of(
    client: httpx.Client, fhir_base: str, clients: Mapping[str, tuple[str, str]]
) -> dict[str, Credentials]:
    """Return each facility's credentials, which ask the hub for a token when first needed."""
    return {
        code: Credentials(client, fhir_base, client_id, secret)
        for code, (client_id, secret) in clients.items()
    }


def headers_of(callers: Mapping[str, Credentials], code: str) -> dict[str, str]:
    """Return the Authorization header of a facility's client, or none without one."""
    caller = callers.get(code)
    return caller.header() if caller is not None else {}


def saved_caller(
    client: httpx.Client, fhir_base: str, folder: Path, role: str
) -> tuple[str, Credentials] | None:
    """Return the facility (or "") and credentials of the demo's person of a role, from the
    credentials file `ehrhub demo` wrote before the demo started; None without one."""
    try:
        saved = json.loads((folder / "credentials.json").read_text())
    except (OSError, ValueError):
        return None
    for c in saved:
        if c.get("role") == role:
            credentials = Credentials(client, fhir_base, c["client_id"], c["client_secret"])
            return str(c.get("facility") or ""), credentials
    return None


def demo_clinician(client: httpx.Client, fhir_base: str, folder: Path) -> Clinician | None:
    """Return the demo clinician, if `ehrhub demo` made one."""
    found = saved_caller(client, fhir_base, folder, "clinician")
    return Clinician(*found) if found and found[0] else None


def say_quality(client: httpx.Client, base: str, fhir_base: str, folder: Path) -> None:
    """Say what the national profiles found in what was synced, as the ministry reads it at
    /quality: the share of records valid, complete and coded, of patients identified, and
    the rules most broken."""
    found = saved_caller(client, fhir_base, folder, "ministry")
    if found is None:
        return
    response = client.get(f"{base}/quality", headers=found[1].header())
    response.raise_for_status()
    report = response.json()
    rows = report["facilities"]
    checked = sum(r["checked"] for r in rows)
    if not checked:
        return
    shares = ", ".join(
        f"{sum(r[axis] for r in rows) / checked:.0%} {axis}"
        for axis in ("valid", "complete", "coded")
    )
    identified = sum(r["identified"] for r in rows) / max(1, sum(r["patients"] for r in rows))
    broken: dict[str, int] = {}
    for r in report["rules"]:
        if r["severity"] != "information":  # a gap in must-support data is not an error
            broken[r["rule"]] = broken.get(r["rule"], 0) + r["records"]
    worst = sorted(broken.items(), key=lambda item: -item[1])[:3]
    say(
        f"data quality (national profiles): {checked} records checked, {shares}; "
        f"{identified:.0%} of patients identified by a valid citizen ID: {base}/quality"
    )
    if worst:
        say("  most broken: " + "; ".join(f"{rule} ({n} records)" for rule, n in worst))
    say(f"the ministry's dashboard: {base}/dashboard (log in with the ministry login above)")


def register(
    client: httpx.Client, found: Sequence[SimFacility], callers: Mapping[str, Credentials]
) -> None:
    """Write each facility's Organization as the registry knows it (name, province, level,
    type, ownership): by the facility's own client when it has one, since a facility's
    client sees and matches only its own records, else all in one transaction."""
    groups = [[f] for f in found] if callers else [list(found)]
    for group in groups:
        entries = [
            {
                "resource": f.organization(),
                "request": {
                    "method": "PUT",
                    "url": f"Organization?{identifier_query(FACILITY_SYSTEM, f.code)}",
                },
            }
            for f in group
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        headers = {"content-type": FHIR_JSON} | headers_of(callers, group[0].code)
        response = client.post("", content=json.dumps(bundle), headers=headers)
        response.raise_for_status()


def write_registry(path: Path, found: Sequence[SimFacility]) -> None:
    """Write the facilities as the CSV the ministry keeps of its registry."""
    columns = ("code", "name", "province", "level", "type", "ownership", "format")
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for f in found:
            row = (f.code, f.name, f.province.name, f.level, f.type, f.ownership, f.format)
            writer.writerow(row)


def count(client: httpx.Client, resource_type: str, headers: Mapping[str, str]) -> int:
    """Return how many resources of a type the caller of these headers sees."""
    response = client.get(resource_type, params={"_summary": "count"}, headers=headers)
    response.raise_for_status()
    return int(response.json().get("total", 0))


def holdings(client: httpx.Client, callers: Mapping[str, Credentials]) -> dict[str, int]:
    """Return how many resources of each summary type the facilities hold: the sum of what
    each facility's client counts of its own (the facilities write every record the demo sends
    but the people's own Consents), or, without clients, what a call without a token counts."""
    views = [c.header for c in callers.values()] or [dict]
    return {t: sum(count(client, t, view()) for view in views) for t in SUMMARY_TYPES}


def wait_ready(client: httpx.Client, base: str, stopping: threading.Event) -> bool:
    """Wait until the hub answers /readyz; return False if told to stop first."""
    while not stopping.is_set():
        try:
            if client.get(f"{base}/readyz").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stopping.wait(READY_POLL_SECONDS)
    return False


def holders(resources: Sequence[dict[str, Any]]) -> set[str]:
    """Return the facilities whose records these are: each holds its own Patient record of a
    person, which every adapter points at the facility's Organization."""
    return {
        str(r.get("managingOrganization", {}).get("reference"))
        for r in resources
        if r.get("resourceType") == "Patient"
    }


def everything(
    client: httpx.Client, patient_id: str, headers: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Return the resources of a Patient's $everything, page after page."""
    found: list[dict[str, Any]] = []
    url: str | None = f"Patient/{patient_id}/$everything"
    while url:
        response = client.get(url, headers=headers)
        response.raise_for_status()
        page = response.json()
        found += [e["resource"] for e in page.get("entry", []) if "resource" in e]
        links = page.get("link", [])
        url = next((link["url"] for link in links if link.get("relation") == "next"), None)
    return found


def show_linked(
    client: httpx.Client,
    fhir_base: str,
    made: Sequence[Visit],
    chosen: Sequence[Choice],
    clinician: Clinician | None,
) -> None:
    """Say how many people have records at several facilities and, for one who lets every
    facility see their records and one without a Consent, what the demo clinician sees."""
    places: dict[str, set[str]] = {}
    for v in made:
        places.setdefault(v.person.cccd, set()).add(v.facility.code)
    shared = sum(len(codes) > 1 for codes in places.values())
    say(f"{len(places)} people, {shared} of them with records at two or more facilities")
    sharing = {c.cccd for c in chosen if c.kind == SHARE}
    consenting = {c.cccd for c in chosen}
    home = clinician.facility if clinician else None
    kinds = (
        ("who lets every facility see their records", lambda cccd: cccd in sharing),
        ("without a consent", lambda cccd: cccd not in consenting),
    )
    for kind, wanted in kinds:
        # The clinician's own patients first: they see their own facility's records anyway.
        linked = sorted(
            (cccd for cccd, codes in places.items() if len(codes) > 1 and wanted(cccd)),
            key=lambda cccd: (home not in places[cccd], -len(places[cccd]), cccd),
        )
        if linked:
            show_person(client, fhir_base, linked[0], len(places[linked[0]]), kind, clinician)


def show_person(
    client: httpx.Client,
    fhir_base: str,
    cccd: str,
    held_at: int,
    kind: str,
    clinician: Clinician | None,
) -> None:
    """Say what the demo clinician (or, without one, a call without a token) sees of one
    person's records: how many resources, from how many facilities."""
    query = f"Patient?identifier={CCCD_SYSTEM}|{cccd}"
    say(f"one {kind}, with records at {held_at} facilities: {fhir_base}/{query}")
    headers = clinician.credentials.header() if clinician else {}
    who = f"the demo clinician (at {clinician.facility})" if clinician else "a call without a token"
    response = client.get(query, headers=headers)
    response.raise_for_status()
    found = [e["resource"] for e in response.json().get("entry", []) if "resource" in e]
    if not found:
        say(f"  {who} finds no record of them")
        return
    patient = found[0]["id"]
    resources = everything(client, patient, headers)
    places = len(holders(resources))
    say(
        f"  {who} sees {len(resources)} resources from {places} "
        f"{'facility' if places == 1 else 'facilities'}: {fhir_base}/Patient/{patient}/$everything"
    )


def people_consents(
    client: httpx.Client, base: str, fhir_base: str, folder: Path, chosen: Sequence[Choice]
) -> Written | None:
    """Have the people who consent write their Consents through logins of their own, which
    the demo's admin makes them; None without an admin login to make them."""
    found = saved_caller(client, fhir_base, folder, "admin")
    if found is None:
        return None
    people = len({c.cccd for c in chosen})
    say(
        f"{people} people write their {len(chosen)} consents through logins of their own "
        f"(role patient, made with the demo's admin login), {PEOPLE_AT_ONCE} at a time"
    )

    def progress(done: int, people: int, written: Written) -> None:
        say(
            f"[{done:>{len(str(people))}}/{people}] people: {written.created} consents written, "
            f"{written.held} already held, in {written.seconds:.1f}s"
        )

    return write_consents(client, base, found[1], chosen, progress)


def say_consents(chosen: Sequence[Choice], written: Written | None) -> None:
    """Say how many Consents the people wrote themselves, and of which kinds."""
    if written is None:
        say("consents: none written (no admin login in credentials.json to make the people's)")
        return
    shares = sum(c.kind == SHARE for c in chosen)
    missing = (
        f"; {written.missing} not written (the person's login finds no Patient record)"
        if written.missing
        else ""
    )
    say(
        f"consents: {written.created} written by the people themselves, {written.held} "
        f"already held ({shares} let every facility see their records for treatment, "
        f"{len(chosen) - shares} refuse their PSY and HIV records to other facilities, "
        f"even in emergencies; {written.people} people, each through their own login, "
        f"in {written.seconds:.1f}s){missing}"
    )


def say(text: str) -> None:
    """Print a line of the demo's progress."""
    print(f"demo: {text}", flush=True)


def backfill(
    fhir_base: str, options: DemoOptions, found: list[SimFacility]
) -> tuple[list[SyncResult], list[Visit]]:
    """Write every facility's export of the past days and sync them all; return the results
    and the visits sent."""
    until = options.until or datetime.now(TZ_VN).date()
    sizes = population_sizes(found)
    exports = options.folder / "exports"
    # Each run is a new export, sent whole: the hub, not the outbox, must match what it holds.
    shutil.rmtree(options.folder / "outbox", ignore_errors=True)
    jobs, made = [], []
    for f in found:
        items = list(visits(f, sizes, options.seed, until, options.days))
        jobs.append((f, write_export(exports / f.code, f, items, f"{until:%Y%m%d}")))
        made += items
    say(f"wrote the exports of {len(found)} facilities under {exports}; syncing them")
    results: list[SyncResult] = []
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        futures = [pool.submit(sync_export, f, path, fhir_base, options) for f, path in jobs]
        for future in futures:
            result = future.result()
            results.append(result)
            f = result.facility
            say(
                f"[{len(results):>{len(str(len(jobs)))}}/{len(jobs)}] {f.code} {f.name} "
                f"({f.format}, {f.level}): {result.summary} in {result.seconds:.1f}s"
            )
    return results, made


def live_round(
    fhir_base: str, options: DemoOptions, found: list[SimFacility], round_number: int
) -> list[SyncResult]:
    """Send today's new visits of a few facilities, a different few each round."""
    now = datetime.now(TZ_VN)
    sizes = population_sizes(found)
    start = round_number * options.live_facilities
    chosen = [found[(start + i) % len(found)] for i in range(options.live_facilities)]
    results = []
    for f in chosen:
        batch = f"L{now:%H%M%S}"
        drawn = visits(f, sizes, options.seed, now.date(), 1, count=2, batch=batch)
        # Visits that just ended: an outpatient visit of two hours, a few minutes apart.
        items = [
            replace(v, inpatient=False, start=now - LIVE_VISIT * (i + 1), end=now - LIVE_GAP * i)
            for i, v in enumerate(drawn)
        ]
        folder = options.folder / "exports" / f.code
        path = write_export(folder, f, items, f"{now:%Y%m%d-%H%M%S}")
        results.append(sync_export(f, path, fhir_base, options))
    return results


def run_demo(base: str, options: DemoOptions, stopping: threading.Event) -> None:
    """Wait for the hub at base, fill it from the simulated facilities, then keep feeding it."""
    fhir_base = f"{base}/fhir"
    found = facilities(options.facilities, options.seed, options.scale)
    options.folder.mkdir(parents=True, exist_ok=True)
    write_registry(options.folder / "facilities.csv", found)
    with httpx.Client(base_url=fhir_base, timeout=SYNC_TIMEOUT_SECONDS) as client:
        if not wait_ready(client, base, stopping):
            return
        started = time.monotonic()
        callers = callers_of(client, fhir_base, options.clients)
        register(client, found, callers)
        results, made = backfill(fhir_base, options, found)
        failed = [r for r in results if r.status != 0]
        synced = time.monotonic() - started
        chosen = choices(made, options.seed)
        written = people_consents(client, base, fhir_base, options.folder, chosen)
        totals = ", ".join(f"{t} {n}" for t, n in holdings(client, callers).items())
        # Consents a person wrote are held by no facility: the facilities' counts leave them out.
        theirs = (
            f"; and {written.created + written.held} Consents the people wrote themselves"
            if written is not None
            else ""
        )
        say(
            f"done: {len(found)} facilities, {sum(r.records for r in results)} records synced "
            f"in {synced:.0f}s; {len(failed)} facilities with problems"
        )
        say(f"the hub holds: {totals} (as the facilities count their own records){theirs}")
        for r in failed:
            outbox = options.folder / "outbox" / f"{r.facility.code}.sqlite"
            say(f"  {r.facility.code}: {r.summary} (ehrhub sync rejected --outbox {outbox})")
        say_consents(chosen, written)
        say_quality(client, base, fhir_base, options.folder)
        clinician = demo_clinician(client, fhir_base, options.folder)
        show_linked(client, fhir_base, made, chosen if written is not None else [], clinician)
    if options.live_seconds <= 0:
        return
    say(f"every {options.live_seconds:g}s, {options.live_facilities} facilities send new visits")
    round_number = 0
    while not stopping.wait(options.live_seconds):
        results = live_round(fhir_base, options, found, round_number)
        round_number += 1
        sent = ", ".join(f"{r.facility.code} {r.records}" for r in results)
        say(f"live round {round_number}: {sent} records")


def start(base: str, options: DemoOptions, stopping: threading.Event) -> threading.Thread:
    """Run the demo beside the hub, in a thread that ends when stopping is set."""

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception as error:  # the hub keeps running; say what went wrong
                if not stopping.is_set():
                    print(f"ehrhub: the demo stopped: {error!r}", file=sys.stderr, flush=True)

        return run

    thread = threading.Thread(
        target=guarded(lambda: run_demo(base, options, stopping)), name="demo", daemon=True
    )
    thread.start()
    return thread
