"""Time the hub's FHIR searches over HTTP at two database sizes, filled through the hub.

Run from the repository root: python loadtests/bench_search.py [--sizes 10000,100000] [--quick]
It starts an embedded database and the hub (as bench_ingest.py does), posts Synthea-like
transaction Bundles until the database holds the small size, times each search, posts more
Bundles up to the large size in the same database and times them again. Each Bundle is a copy of
a Synthea fixture with new ids and a unique Vietnamese citizen ID (CCCD) and name on its Patient.
One person has two Patient records with one CCCD (hospital A: the 1,111-resource fixture,
hospital B: a small one), for Patient $everything. Every answer's total is checked against what
was loaded, where the script can tell.
"""

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_ingest import (  # noqa: E402
    BENCH_FACILITY,
    HUB_DATABASE,
    Bundle,
    Job,
    RssSampler,
    TokenAuth,
    database,
    default_data_dir,
    drop_hub_database,
    hub_process,
    insert_raw,
    progress,
    register_facility,
    run_jobs,
    wait_ready,
)

from adapters.simulate.sample import (  # noqa: E402
    CCCD_SYSTEM,
    FAMILY_NAMES,
    GIVEN_NAMES,
    ID_TYPE_SYSTEM,
    MIDDLE_NAMES,
    PROVINCES,
    citizen_id,
)
from hub.search.values import fold  # noqa: E402

LOINC = "http://loinc.org"
MRN_SYSTEM = "https://moh.gov.vn/fhir/sid/bench-mrn"
# The fixture of the person with about 1,000 resources, and the one of their second record.
BIG_TEMPLATE = "Fletcher_Hyatt"
LINKED_TEMPLATE = "Buster_Hoeger"
PAGE = 50
MIN_CALLS = 3
# Targets of the search issue.
SMALL_PAGE_P95_MS = 50.0
EVERYTHING_P95_MS = 300.0
GROWTH_P95 = 1.5
_UUID = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
FHIR_JSON = {"Accept": "application/fhir+json"}


@dataclass
class Template:
    """A Synthea patient Bundle, cut at its uuids so copies with new ids are cheap to make."""

    name: str
    parts: list[str]  # odd items are uuids
    size: int
    patient_index: int
    gender: str
    birth_year: int
    observations: list[tuple[str, str]]  # (LOINC code, effective date yyyy-mm-dd)
    encounters: int
    medication_requests: int


@dataclass
class Record:
    """One Patient record loaded into the hub, and what its Bundle held."""

    template: Template
    seed: int
    cccd: str
    family: str
    given: list[str]
    id: str = ""  # given by the hub


@dataclass
class Probe:
    """One request to time, with the total it must answer if the script knows it."""

    url: str
    expected: int | None = None


@dataclass
class Figures:
    """What one search measured at one size."""

    times: list[float] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def p(self, share: float) -> float:
        """Return a percentile of the latencies in ms."""
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def load_templates(folder: Path) -> list[Template]:
    """Return every patient Bundle of the folder as a template (not the practitioner lists)."""
    found = []
    for path in sorted(folder.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        bundle = json.loads(text)
        types = [e["resource"]["resourceType"] for e in bundle["entry"]]
        if "Patient" not in types:
            continue
        patient = bundle["entry"][types.index("Patient")]["resource"]
        observations = [
            (coding["code"], r["effectiveDateTime"][:10])
            for r in (e["resource"] for e in bundle["entry"])
            if r["resourceType"] == "Observation" and "effectiveDateTime" in r
            for coding in r["code"].get("coding", [])
            if coding.get("system") == LOINC
        ]
        found.append(
            Template(
                name=path.stem,
                parts=_UUID.split(text),
                size=len(types),
                patient_index=types.index("Patient"),
                gender=patient.get("gender", "male"),
                birth_year=int(patient.get("birthDate", "1970")[:4]),
                observations=observations,
                encounters=types.count("Encounter"),
                medication_requests=types.count("MedicationRequest"),
            )
        )
    if not found:
        raise SystemExit(f"no patient bundles in {folder}")
    return found


def bundle_of(record: Record) -> Bundle:
    """Return the record's Bundle: its template with new uuids, CCCD, record number and name."""
    rng = random.Random(record.seed)
    fresh: dict[str, str] = {}
    pieces = [
        fresh.setdefault(p, str(uuid.UUID(int=rng.getrandbits(128), version=4))) if i % 2 else p
        for i, p in enumerate(record.template.parts)
    ]
    bundle: Bundle = json.loads("".join(pieces))
    patient = bundle["entry"][record.template.patient_index]["resource"]
    ni = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "NI"}]}
    mr = {"coding": [{"system": ID_TYPE_SYSTEM, "code": "MR"}]}
    patient["identifier"] = [
        {"type": ni, "system": CCCD_SYSTEM, "value": record.cccd},
        {"type": mr, "system": MRN_SYSTEM, "value": uuid.UUID(int=rng.getrandbits(128)).hex},
    ]
    text = " ".join([record.family, *record.given])
    patient["name"] = [
        {"use": "official", "text": text, "family": record.family, "given": record.given}
    ]
    return bundle


class Population:
    """The records loaded so far, and new ones with unique citizen IDs."""

    def __init__(self, templates: list[Template], seed: int) -> None:
        self.rng = random.Random(seed)
        self.by_name = {t.name.split("_")[0] + "_" + t.name.split("_")[1]: t for t in templates}
        self.big = self.by_name[BIG_TEMPLATE]
        self.ordinary = [t for t in templates if t is not self.big]
        self.records: list[Record] = []
        self.cccds: set[str] = set()
        self.size = 0

    def new(self, template: Template, like: Record | None = None) -> Record:
        """Return a new record of a template: a new person, or another record of `like`'s."""
        if like is not None:
            record = Record(template, self.rng.getrandbits(63), like.cccd, like.family, like.given)
        else:
            gender = template.gender
            cccd = ""
            while not cccd or cccd in self.cccds:
                province = self.rng.choice(PROVINCES)
                cccd = citizen_id(self.rng, province, gender, template.birth_year)
            self.cccds.add(cccd)
            family = self.rng.choice(FAMILY_NAMES)
            given = [self.rng.choice(MIDDLE_NAMES[gender]), self.rng.choice(GIVEN_NAMES[gender])]
            record = Record(template, self.rng.getrandbits(63), cccd, family, given)
        self.records.append(record)
        self.size += template.size
        return record

    def grow(self, size: int) -> list[Record]:
        """Return new records of ordinary patients until the database holds about `size`."""
        added = []
        smallest = min(t.size for t in self.ordinary)
        while size - self.size >= smallest:
            room = size - self.size
            fits = [t for t in self.ordinary if t.size <= room]
            added.append(self.new(self.rng.choice(fits)))
        return added

    def same_cccd(self, cccd: str) -> list[Record]:
        """Return every record of one person."""
        return [r for r in self.records if r.cccd == cccd]


def jobs(records: list[Record]) -> Iterator[Job]:
    """Yield each record's Bundle, built when sent, so 100,000 resources never sit in memory."""
    for record in records:
        bundle = bundle_of(record)
        bundle["_record"] = record  # taken out before sending
        yield 1, bundle, b""


async def post_records(
    base_url: str, records: list[Record], concurrency: int, auth: TokenAuth
) -> float:
    """Post every record's Bundle to the hub, note its Patient's id; return the seconds taken."""
    headers = {"Content-Type": "application/fhir+json", **FHIR_JSON}
    total = sum(r.template.size for r in records)
    done = 0
    async with httpx.AsyncClient(
        base_url=base_url, timeout=600, headers=headers, auth=auth
    ) as client:

        async def send(job: Job) -> int:
            nonlocal done
            bundle = job[1]
            record: Record = bundle.pop("_record")
            response = await client.post("/fhir", content=json.dumps(bundle).encode())
            if response.status_code != 200:
                raise RuntimeError(f"POST /fhir answered {response.status_code}: {response.text}")
            entries = response.json().get("entry", [])
            if len(entries) != len(bundle["entry"]):
                raise RuntimeError(f"sent {len(bundle['entry'])} entries, {len(entries)} answered")
            location = entries[record.template.patient_index]["response"]["location"]
            record.id = location.rpartition("Patient/")[2].split("/")[0]
            before, done = done, done + len(entries)
            if before // 10_000 != done // 10_000:
                progress(f"hub: {done:,}/{total:,} resources")
            return len(entries)

        # run_jobs only iterates over its work: a generator keeps the Bundles out of memory.
        written, seconds = await run_jobs("hub", jobs(records), concurrency, send)  # type: ignore[arg-type]
    assert written == total
    return seconds


def raw_jobs(records: list[Record]) -> Iterator[Job]:
    """Yield the same Bundles for raw insert_many."""
    for record in records:
        yield 1, bundle_of(record), b""


def probes(population: Population, person: Record, pages: list[str]) -> dict[str, Callable]:
    """Return each search by name: a call that draws a probe from the loaded records."""
    rng = random.Random(7)
    ordinary = [r for r in population.records if r.template is not population.big]

    def observed(cccd: str, code: str | None = None, low: str = "", high: str = "9") -> int:
        return sum(
            1
            for r in population.same_cccd(cccd)
            for c, d in r.template.observations
            if (code is None or c == code) and low <= d < high
        )

    def token() -> Probe:
        r = rng.choice(population.records)
        url = f"Patient?identifier={CCCD_SYSTEM}|{r.cccd}"
        return Probe(url, len(population.same_cccd(r.cccd)))

    def code_patient() -> Probe:
        r = rng.choice(ordinary)
        code = rng.choice(r.template.observations)[0]
        expected = sum(1 for c, _ in r.template.observations if c == code)
        return Probe(f"Observation?code={LOINC}|{code}&patient={r.id}", expected)

    def patient_code() -> Probe:
        # The same search with its selective clause first: ties on rank drive by the first.
        probe = code_patient()
        code, patient = probe.url.removeprefix("Observation?").split("&")
        return Probe(f"Observation?{patient}&{code}", probe.expected)

    def patient_date() -> Probe:
        r = rng.choice(ordinary)
        days = sorted(rng.choice(r.template.observations)[1] for _ in range(2))
        high = (date.fromisoformat(days[1]) + timedelta(days=1)).isoformat()
        expected = sum(1 for _, d in r.template.observations if days[0] <= d < high)
        url = f"Observation?patient={r.id}&date=ge{days[0]}&date=lt{high}"
        return Probe(url, expected)

    def chained() -> Probe:
        r = rng.choice(ordinary)
        code = rng.choice(r.template.observations)[0]
        url = f"Observation?subject:Patient.identifier={CCCD_SYSTEM}|{r.cccd}&code={LOINC}|{code}"
        return Probe(url, observed(r.cccd, code))

    def include_encounter() -> Probe:
        r = rng.choice(population.records)
        url = f"Encounter?patient={r.id}&_include=Encounter:subject&_count={PAGE}"
        return Probe(url, r.template.encounters)

    def include_requester() -> Probe:
        r = rng.choice([r for r in population.records if r.template.medication_requests])
        url = f"MedicationRequest?patient={r.id}&_include=MedicationRequest:requester&_count={PAGE}"
        return Probe(url, r.template.medication_requests)

    def string() -> Probe:
        r = rng.choice(population.records)
        family, given = r.family[: rng.randint(2, 4)], r.given[-1][: rng.randint(1, 3)]
        expected = sum(
            1
            for o in population.records
            if fold(o.family).startswith(fold(family))
            and any(fold(g).startswith(fold(given)) for g in o.given)
        )
        return Probe(f"Patient?family={family}&given={given}", expected)

    records = population.same_cccd(person.cccd)

    def everything_first() -> Probe:
        return Probe(f"Patient/{rng.choice(records).id}/$everything?_count={PAGE}")

    def everything_later() -> Probe:
        return Probe(rng.choice(pages[1:]))

    return {
        "token: Patient?identifier=cccd|X": token,
        "token: Observation?code&patient": code_patient,
        "token: Observation?patient&code": patient_code,
        "patient + date range": patient_date,
        "chained subject:Patient.identifier": chained,
        "_include Encounter:subject": include_encounter,
        "_include MedicationRequest:requester": include_requester,
        "$everything, first page": everything_first,
        "$everything, a later page": everything_later,
        "string family + given prefixes": string,
    }


def everything_pages(client: httpx.Client, person: Record) -> tuple[list[str], int, str]:
    """Follow the person's $everything pages; return their URLs, the total and any problem."""
    url = f"Patient/{person.id}/$everything?_count={PAGE}"
    pages, seen, total, problem = [], [], 0, ""
    while url:
        pages.append(url)
        answer = client.get(url).raise_for_status().json()
        total = answer["total"]
        seen += [e["fullUrl"] for e in answer.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((ln["url"] for ln in answer.get("link", []) if ln["relation"] == "next"), "")
    if len(seen) != total or len(set(seen)) != total:
        problem = f"{len(pages)} pages held {len(seen)} matches ({len(set(seen))} distinct)"
    return pages, total, problem


def timings(client: httpx.Client, draw: Callable[[], Probe], repeat: int, budget: float) -> Figures:
    """Time `repeat` requests with varied values (fewer once `budget` seconds are spent)."""
    figures = Figures()
    client.get(draw().url).raise_for_status()  # untimed: warm the caches
    deadline = time.perf_counter() + budget
    while len(figures.times) < repeat and (
        len(figures.times) < MIN_CALLS or time.perf_counter() < deadline
    ):
        probe = draw()
        started = time.perf_counter()
        response = client.get(probe.url)
        figures.times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            figures.wrong.append(f"{probe.url}: {response.status_code} {response.text[:300]}")
            continue
        total = response.json().get("total", -1)
        figures.totals.append(total)
        if probe.expected is not None and total != probe.expected:
            figures.wrong.append(f"{probe.url}: total {total}, loaded {probe.expected}")
    return figures


async def count_resources(uri: str) -> int:
    """Return how many current resources the hub's database holds."""
    client: AsyncMongoClient[Bundle] = AsyncMongoClient(uri)
    try:
        return await client[HUB_DATABASE]["resources"].count_documents({})
    finally:
        await client.close()


def target_of(name: str) -> str:
    """Return the latency target a search has in the issue."""
    if name.startswith("$everything"):
        return f"<{EVERYTHING_P95_MS:.0f}"
    if name.startswith("token: Patient"):
        return f"<{SMALL_PAGE_P95_MS:.0f}"
    return f"({SMALL_PAGE_P95_MS:.0f})"


def table(sizes: list[int], results: dict[str, list[Figures]]) -> str:
    """Format p50 and p95 per size, the p95 growth, the result counts and the problems."""
    small, large = (f"{s // 1000}k" for s in sizes)
    head = f"{'search':38}{'p50 ' + small:>9}{'p95 ' + small:>9}{'p50 ' + large:>9}"
    head += f"{'p95 ' + large:>9}{'ratio':>7}{'target':>8}  {'results (median)':17}calls  wrong"
    lines = [head]
    for name, (a, b) in results.items():
        ratio = b.p(0.95) / a.p(0.95)
        target = target_of(name)
        limit = float(target.strip("<()"))
        mark = "" if b.p(0.95) < limit or target.startswith("(") else " !"
        mark += "" if ratio < GROWTH_P95 else " ^"
        results_cell = "/".join(
            str(round(statistics.median(f.totals))) if f.totals else "-" for f in (a, b)
        )
        lines.append(
            f"{name:38}{a.p(0.5):9.1f}{a.p(0.95):9.1f}{b.p(0.5):9.1f}{b.p(0.95):9.1f}"
            f"{ratio:7.2f}{target:>8}  {results_cell:17}{len(a.times)}/{len(b.times)}"
            f"  {len(a.wrong)}/{len(b.wrong)}{mark}"
        )
    lines.append(
        f"latencies in ms over HTTP; target: p95 in ms at the large size (parenthesised: "
        f"informative, a page of up to {PAGE}); ratio = p95 {large}/{small}, target < "
        f"{GROWTH_P95}; '!' misses the latency target, '^' the ratio"
    )
    return "\n".join(lines)


def ingest_table(phases: list[dict[str, float]]) -> str:
    """Format each load phase's rate through the hub and raw insert_many's."""
    lines = [f"{'load phase':14}{'resources':>11}{'hub /s':>9}{'raw /s':>9}{'hub/raw':>9}"]
    for ph in phases:
        lines.append(
            f"{ph['label']:14}{ph['resources']:>11,.0f}{ph['hub_rate']:>9,.0f}"
            f"{ph['raw_rate']:>9,.0f}{ph['hub_rate'] / ph['raw_rate']:>9.2f}"
        )
    return "\n".join(lines)


def measure(uri: str, args: argparse.Namespace) -> None:
    """Load each size, time every search at it, and print the tables."""
    population = Population(load_templates(args.data), args.seed)
    person = population.new(population.big)
    population.new(population.by_name[LINKED_TEMPLATE], like=person)
    phases: list[dict[str, Any]] = []
    results: dict[str, list[Figures]] = {}
    started = time.perf_counter()
    asyncio.run(drop_hub_database(uri))
    with hub_process(uri) as (proc, base_url):
        wait_ready(proc, base_url)
        sampler = RssSampler(proc.pid)
        sampler.start()
        # One facility's system sends every record and searches them.
        auth = TokenAuth(*asyncio.run(register_facility(uri, BENCH_FACILITY)))
        client = httpx.Client(
            base_url=f"{base_url}/fhir", headers=FHIR_JSON, timeout=120, auth=auth
        )
        try:
            pending = population.records[:]
            pages: list[str] = []
            for size in args.sizes:
                pending += population.grow(size)
                progress(f"loading {sum(r.template.size for r in pending):,} resources")
                seconds = asyncio.run(post_records(base_url, pending, args.concurrency, auth))
                resources = sum(r.template.size for r in pending)
                progress(f"hub: {resources / seconds:,.0f} resources/s; raw insert_many")
                raw, raw_seconds = asyncio.run(insert_raw(uri, raw_jobs(pending), args.concurrency))  # type: ignore[arg-type]
                held = asyncio.run(count_resources(uri))
                if held != population.size:
                    progress(f"the hub holds {held:,} resources, {population.size:,} were sent")
                label = f"to {held:,}"
                phases.append(
                    {"label": label, "resources": resources, "hub_rate": resources / seconds}
                    | {"raw_rate": raw / raw_seconds}
                )
                pending = []
                if not pages:
                    pages, total, problem = everything_pages(client, person)
                    progress(f"$everything: {total} resources on {len(pages)} pages {problem}")
                for name, draw in probes(population, person, pages).items():
                    figures = timings(client, draw, args.repeat, args.budget)
                    results.setdefault(name, []).append(figures)
                    progress(
                        f"{held:,}: {name}: p50 {figures.p(0.5):.1f} ms, "
                        f"p95 {figures.p(0.95):.1f} ms, {len(figures.times)} calls, "
                        f"{len(figures.wrong)} wrong"
                    )
                    for problem in figures.wrong[:3]:
                        progress(f"  wrong: {problem}")
        finally:
            client.close()
            sampler.stop()
            asyncio.run(drop_hub_database(uri))
    print(table(args.sizes, results))
    print()
    print(ingest_table(phases))
    print(f"hub peak RSS {sampler.peak_mb:.0f} MB; run took {time.perf_counter() - started:.0f} s")
    if args.json:
        summary = {
            name: [{"p50": f.p(0.5), "p95": f.p(0.95), "calls": len(f.times)} for f in figs]
            for name, figs in results.items()
        }
        print(json.dumps({"sizes": args.sizes, "searches": summary, "ingest": phases}))


def sizes_of(text: str) -> list[int]:
    """Parse `10000,100000`."""
    return [int(part) for part in text.split(",")]


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes_of, default=[10_000, 100_000], help="small,large")
    parser.add_argument("--small", type=int, help="the small size alone")
    parser.add_argument("--large", type=int, help="the large size alone")
    parser.add_argument("--quick", action="store_true", help="2,000 then 10,000 resources")
    parser.add_argument("--repeat", type=int, default=100, help="timed requests per search")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds per search and size (3 calls at least)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="parallel senders when loading")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="Synthea bundles")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mongodb-uri", help="use this server instead of an embedded one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.quick:
        args.sizes = [2_000, 10_000]
    args.sizes = [args.small or args.sizes[0], args.large or args.sizes[-1]]
    if len(args.sizes) != 2 or args.sizes[0] >= args.sizes[1]:
        parser.error("--sizes needs a small and a larger size, e.g. --sizes 10000,100000")
    with database(args.mongodb_uri) as uri:
        measure(uri, args)


if __name__ == "__main__":
    main()
