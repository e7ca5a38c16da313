"""Measure what consent checks cost a clinician's searches, against a facility system's.

Run from the repository root: python loadtests/bench_consent.py [--persons 500] [--quick]
It starts an embedded database and the hub's app in this process (authentication on), and
loads, through each facility's own system client, persons held at two facilities: at A a
Patient and ten records, at B a Patient with the same citizen ID (CCCD) and three records.
Half the persons have a permit Consent written by A (it governs A's records, which is what
a clinician at B asks for; docs/consent.md). Then it times the same mix of searches,
each about a random person, with several requests in flight, as:
1. facility B's system (its facility's records; no consent is evaluated): the baseline;
2. a clinician at B, about persons without consent: the same answers, but consent is evaluated;
3. the clinician about persons with consent: A's records too (for information).
The cases take turns in several rounds, so a slower minute of a shared machine hits them all.
Every answer must be 200 and hold what the case may see, or the run fails.
"""

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_ingest import database  # noqa: E402

from hub.app import create_app  # noqa: E402
from hub.auth.identities import new_identity  # noqa: E402
from hub.auth.roles import Role  # noqa: E402
from hub.settings import Settings  # noqa: E402

CCCD_SYSTEM = "http://fhir.hl7.org.vn/core/sid/cccd"
LOINC = "http://loinc.org"
FACILITY_A = "BENCH-A"
FACILITY_B = "BENCH-B"
# What each facility holds about every person, besides the Patient.
HELD_AT_A = {"Observation": 4, "Condition": 3, "Encounter": 3}
HELD_AT_B = {"Observation": 2, "Encounter": 1}
PERSONS_PER_BUNDLE = 20
CONSENTS_PER_BUNDLE = 100
LOAD_CONCURRENCY = 2
# The target: consent checks cost at most this share of search throughput.
COST_TARGET = 0.20
BASE_URL = "http://bench"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@dataclass
class Person:
    """One person: a citizen ID and their Patient ids at A and at B."""

    cccd: str
    consented: bool
    at_a: str = ""
    at_b: str = ""


@dataclass
class Query:
    """One request of the mix, and what its answer must hold."""

    url: str
    check: Callable[[dict[str, Any]], str]  # returns what is wrong, or ""


@dataclass
class Kind:
    """The latencies of one kind of query in one case."""

    times: list[float] = field(default_factory=list)

    def p(self, share: float) -> float:
        """Return a percentile of the latencies in ms."""
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class Case:
    """One caller asking about one group of persons, and what it measured."""

    name: str
    client: httpx.AsyncClient
    persons: list[Person]
    sees_a: bool  # whether the caller may see A's records of these persons
    kinds: dict[str, Kind] = field(default_factory=dict)
    seconds: float = 0.0
    rounds: dict[int, float] = field(default_factory=dict)  # requests/s by round

    @property
    def requests(self) -> int:
        """Return how many requests were timed."""
        return sum(len(k.times) for k in self.kinds.values())


def progress(message: str) -> None:
    """Tell the operator how far the run is."""
    print(message, file=sys.stderr, flush=True)


def population(count: int, rng: random.Random) -> list[Person]:
    """Return `count` persons with unique 12-digit citizen IDs, every other one consenting."""
    cccds = rng.sample(range(10**11, 10**12), count)
    return [Person(str(c), consented=i % 2 == 0) for i, c in enumerate(cccds)]


def patient(person: Person) -> dict[str, Any]:
    """Return a Patient record of the person."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD_SYSTEM, "value": person.cccd}],
        "name": [{"family": "Nguyễn", "given": ["Văn", person.cccd[-4:]]}],
        "gender": "male",
        "birthDate": "1985-04-12",
    }


def record(resource_type: str, subject: str, n: int) -> dict[str, Any]:
    """Return the n-th small record of a type about `subject`."""
    about = {"reference": subject}
    if resource_type == "Observation":
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
            "subject": about,
            "effectiveDateTime": f"2026-0{1 + n % 9}-1{n % 10}",
            "valueQuantity": {"value": 60 + n, "unit": "/min"},
        }
    if resource_type == "Condition":
        icd = {"system": "http://hl7.org/fhir/sid/icd-10", "code": f"I1{n % 10}"}
        return {"resourceType": "Condition", "subject": about, "code": {"coding": [icd]}}
    coding = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": coding,
        "subject": about,
        "period": {"start": f"2026-0{1 + n % 9}-1{n % 10}"},
    }


def consent(patient_id: str) -> dict[str, Any]:
    """Return an active patient-privacy Consent that permits every facility everything."""
    act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "policyRule": {"coding": [{"system": act_code, "code": "OPTIN"}]},
        "provision": {"type": "permit"},
    }


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a transaction Bundle creating the resources, in order."""
    entries = [
        {
            "fullUrl": r.pop("fullUrl", f"urn:uuid:{uuid.uuid4()}"),
            "resource": r,
            "request": {"method": "POST", "url": r["resourceType"]},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def person_records(person: Person, held: dict[str, int]) -> list[dict[str, Any]]:
    """Return a Patient of the person (with a urn:uuid) followed by its records."""
    url = f"urn:uuid:{uuid.uuid4()}"
    records = [patient(person) | {"fullUrl": url}]
    for resource_type, count in held.items():
        records += [record(resource_type, url, n) for n in range(count)]
    return records


async def post(client: httpx.AsyncClient, resources: list[dict[str, Any]]) -> list[str]:
    """Post a transaction creating the resources; return the ids given, in order."""
    sent = transaction(resources)
    response = await client.post("/fhir", json=sent, headers=FHIR_JSON)
    if response.status_code != 200:
        raise RuntimeError(f"POST /fhir answered {response.status_code}: {response.text[:500]}")
    entries = response.json()["entry"]
    statuses = {e["response"]["status"][:3] for e in entries}
    if len(entries) != len(sent["entry"]) or statuses != {"201"}:
        raise RuntimeError(f"sent {len(sent['entry'])} creates, answered {statuses}")
    return [e["response"]["location"].split("/_history")[0].rpartition("/")[2] for e in entries]


async def load(persons: list[Person], a: httpx.AsyncClient, b: httpx.AsyncClient) -> int:
    """Load every person's records at A and B and the consents; return the resources sent."""
    sent = 0
    slots = asyncio.Semaphore(LOAD_CONCURRENCY)

    async def facility(
        client: httpx.AsyncClient, group: list[Person], held: dict[str, int], side: str
    ) -> None:
        nonlocal sent
        size = 1 + sum(held.values())
        async with slots:
            ids = await post(client, [r for p in group for r in person_records(p, held)])
        for i, person in enumerate(group):
            setattr(person, side, ids[i * size])
        sent += len(ids)

    groups = [
        persons[i : i + PERSONS_PER_BUNDLE] for i in range(0, len(persons), PERSONS_PER_BUNDLE)
    ]
    await asyncio.gather(*(facility(a, g, HELD_AT_A, "at_a") for g in groups))
    await asyncio.gather(*(facility(b, g, HELD_AT_B, "at_b") for g in groups))
    consenting = [p for p in persons if p.consented]
    for i in range(0, len(consenting), CONSENTS_PER_BUNDLE):
        group = consenting[i : i + CONSENTS_PER_BUNDLE]
        sent += len(await post(a, [consent(p.at_a) for p in group]))
    return sent


def mix(person: Person, sees_a: bool) -> dict[str, Query]:
    """Return the query mix about one person, each with the check of its answer."""
    a_side = 1 + sum(HELD_AT_A.values()) + (1 if person.consented else 0)  # its Consent too
    b_side = 1 + sum(HELD_AT_B.values())
    patients = {person.at_b, person.at_a} if sees_a else {person.at_b}

    def total(expected: int) -> Callable[[dict[str, Any]], str]:
        def check(bundle: dict[str, Any]) -> str:
            found = bundle.get("total")
            return "" if found == expected else f"total {found}, expected {expected}"

        return check

    def same_patients(bundle: dict[str, Any]) -> str:
        ids = {e["resource"]["id"] for e in bundle.get("entry", [])}
        return "" if ids == patients else f"Patients {sorted(ids)}, expected {sorted(patients)}"

    return {
        "Patient?identifier=cccd|X": Query(
            f"/fhir/Patient?identifier={CCCD_SYSTEM}|{person.cccd}", same_patients
        ),
        "Observation?patient=<B>": Query(
            f"/fhir/Observation?patient=Patient/{person.at_b}", total(HELD_AT_B["Observation"])
        ),
        "Patient/<B>/$everything": Query(
            f"/fhir/Patient/{person.at_b}/$everything",
            total(b_side + (a_side if sees_a else 0)),
        ),
        "Encounter?patient=<A>": Query(
            f"/fhir/Encounter?patient=Patient/{person.at_a}",
            total(HELD_AT_A["Encounter"] if sees_a else 0),
        ),
    }


async def drive(
    case: Case, turn: int, seconds: float, concurrency: int, rng: random.Random
) -> None:
    """Send the case's query mix with `concurrency` requests in flight for `seconds`."""
    names = list(mix(case.persons[0], case.sees_a))
    for name in names:
        case.kinds.setdefault(name, Kind())
    before = case.requests

    async def worker(offset: int) -> None:
        step = offset
        while time.perf_counter() < deadline:
            name = names[step % len(names)]
            step += 1
            query = mix(rng.choice(case.persons), case.sees_a)[name]
            started = time.perf_counter()
            response = await case.client.get(query.url)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{case.name}: {query.url} answered {response.status_code}")
            wrong = query.check(response.json())
            if wrong:
                raise SystemExit(f"{case.name}: {query.url}: {wrong}")
            case.kinds[name].times.append(elapsed)

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    spent = time.perf_counter() - started
    case.seconds += spent
    case.rounds[turn] = (case.requests - before) / spent


async def warm(case: Case) -> None:
    """Send each query of the mix once, untimed, checking its answer."""
    for name, query in mix(case.persons[0], case.sees_a).items():
        response = await case.client.get(query.url)
        wrong = query.check(response.json()) if response.status_code == 200 else "not 200"
        if wrong:
            raise SystemExit(f"{case.name}: {name}: {response.status_code} {wrong}")


def table(cases: list[Case], concurrency: int) -> str:
    """Format each case's throughput and latencies per query, and the consent cost."""
    lines = [
        f"{'case':34}{'query':28}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}",
    ]
    for case in cases:
        every = Kind([t for k in case.kinds.values() for t in k.times])
        rate = case.requests / case.seconds
        lines.append(
            f"{case.name:34}{'all':28}{case.requests:>9}{rate:>8.1f}"
            f"{every.p(0.5):>8.1f}{every.p(0.95):>8.1f}"
        )
        for name, kind in case.kinds.items():
            lines.append(
                f"{'':34}{name:28}{len(kind.times):>9}{len(kind.times) / case.seconds:>8.1f}"
                f"{kind.p(0.5):>8.1f}{kind.p(0.95):>8.1f}"
            )
    base, checked = cases[0], cases[1]
    ratio = (checked.requests / checked.seconds) / (base.requests / base.seconds)
    per_round = [checked.rounds[t] / base.rounds[t] for t in base.rounds if t in checked.rounds]
    middle = statistics.median(per_round)
    verdict = "meets" if 1 - ratio <= COST_TARGET else "MISSES"
    lines += [
        "",
        f"ratio clinician without consent / facility: {ratio:.2f} "
        f"(per round: {', '.join(f'{r:.2f}' for r in per_round)}; median {middle:.2f})",
        f"consent cost (1 - ratio): {1 - ratio:.0%}; target <= {COST_TARGET:.0%}: {verdict}",
        f"{concurrency} requests in flight, in-process ASGI client; every answer was 200 and held "
        f"what the case may see",
    ]
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def hub(uri: str, name: str = "bench_consent") -> AsyncIterator[Any]:
    """Run the hub's app with its lifespan in this process, on a database of its own."""
    settings = Settings(
        mongodb_uri=uri,
        database=f"{name}_{uuid.uuid4().hex[:8]}",
        auth_required=True,
        token_lifetime_seconds=3600,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        try:
            yield app
        finally:
            await app.state.mongo.client.drop_database(settings.database)


@contextlib.asynccontextmanager
async def client_as(
    app: Any, role: str, timeout: float = 120, **fields: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of the app sending the token of a new identity of the role."""
    identity, secret = new_identity(Role(role), **fields)
    await app.state.auth.identities.create(identity)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=timeout) as client:
        form = {"grant_type": "client_credentials", "client_id": identity.client_id}
        answer = await client.post("/auth/token", data=form | {"client_secret": secret})
        if answer.status_code != 200:
            raise SystemExit(f"no token for a {role}: {answer.status_code} {answer.text[:300]}")
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        client.headers["Accept"] = "application/fhir+json"
        yield client


async def measure(uri: str, args: argparse.Namespace) -> None:
    """Load the persons, time every case in turns, and print the table."""
    rng = random.Random(args.seed)
    persons = population(args.persons, rng)
    async with (
        hub(uri) as app,
        client_as(app, "facility", facility=FACILITY_A, name="bench A") as a,
        client_as(app, "facility", facility=FACILITY_B, name="bench B") as b,
        client_as(app, "clinician", facility=FACILITY_B, name="bench clinician") as clinician,
    ):
        started = time.perf_counter()
        sent = await load(persons, a, b)
        took = time.perf_counter() - started
        progress(f"loaded {sent:,} resources of {len(persons)} persons in {took:.0f} s")
        without = [p for p in persons if not p.consented]
        consenting = [p for p in persons if p.consented]
        cases = [
            Case("1 facility B system (baseline)", b, without, sees_a=False),
            Case("2 clinician at B, no consent", clinician, without, sees_a=False),
            Case("3 clinician at B, consent", clinician, consenting, sees_a=True),
        ]
        for case in cases:
            await warm(case)
        for turn in range(args.rounds):
            for case in cases:
                # Requests in flight at a slice's end finish: a slow case gets shorter slices.
                left = args.budget - case.seconds
                if left > 0:
                    await drive(case, turn, left / (args.rounds - turn), args.concurrency, rng)
                    progress(f"round {turn + 1}: {case.name}: {case.rounds[turn]:.1f} req/s")
    print(table(cases, args.concurrency))


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=500, help="persons held at A and B")
    parser.add_argument("--quick", action="store_true", help="100 persons, 10 s per case")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per case in all")
    parser.add_argument("--rounds", type=int, default=5, help="turns the cases take")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.persons, args.budget = 100, 10.0
    if args.persons < 2:
        parser.error("--persons needs at least 2: one with consent, one without")
    with database(None) as uri:  # an embedded server on a temporary folder
        asyncio.run(measure(uri, args))


if __name__ == "__main__":
    main()
