"""Show that the hub's lookups are index-backed: their latency stays flat as the database grows.

Run from the repository root: python loadtests/bench_lookups.py [--sizes 10000 100000]
It fills one database through the hub's store (Observations, and one Patient in ten with a CCCD
identifier), times each lookup at the first size, grows the database to the next size and times
them again. A lookup whose median stays within FLAT times its first one is index-backed; a
count over an unindexed field is the control that grows with the collection. Each lookup is timed
`--repeat` times, or fewer (at least 3) once it has spent `--budget` seconds at one size.
"""

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_ingest import database, progress  # noqa: E402

from hub.search import plan  # noqa: E402
from hub.search.extract import keys as search_keys  # noqa: E402
from hub.search.query import clause  # noqa: E402
from hub.store.mongo import Mongo  # noqa: E402
from hub.store.resources import ResourceStore, Write, now  # noqa: E402
from hub.store.scope import UNRESTRICTED  # noqa: E402

DATABASE = "bench_lookups"
CCCD = "http://fhir.hl7.org.vn/core/sid/cccd"
BATCH = 1_000
PATIENT_EVERY = 10
PAGE = 50
MIN_CALLS = 3
# A lookup is index-backed if its median grows less than this while the database grows 10x.
FLAT = 2.0

Lookup = Callable[[], Awaitable[int]]
Stamp = Callable[[int], datetime]


@dataclass
class Targets:
    """What the database holds, for lookups to pick random targets from."""

    resources: list[tuple[str, str]] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    observations: list[tuple[datetime, str]] = field(default_factory=list)


def patient(resource_id: str, number: int) -> dict[str, Any]:
    """Return a synthetic Patient with a unique 12-digit CCCD identifier."""
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": CCCD, "value": f"{10**11 + number:012d}"}],
        "name": [{"family": "Nguyễn", "given": ["Văn", f"An {number}"]}],
        "gender": "male" if number % 2 else "female",
        "birthDate": f"{1940 + number % 80}-0{1 + number % 9}-1{number % 10}",
    }


def observation(resource_id: str, subject: str, number: int) -> dict[str, Any]:
    """Return a synthetic heart-rate Observation (no identifier)."""
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": "2024-05-01T08:00:00Z",
        "valueQuantity": {"value": 60 + number % 40, "unit": "/min"},
    }


def batch(first: int, size: int) -> list[Write]:
    """Return `size` new resources numbered from `first`: one Patient in PATIENT_EVERY."""
    writes = []
    subject = str(uuid.uuid4())
    for number in range(first, first + size):
        resource_id = str(uuid.uuid4())
        if number % PATIENT_EVERY == 0:
            subject = resource_id
            resource = patient(resource_id, number)
        else:
            resource = observation(resource_id, subject, number)
        writes.append(Write(resource["resourceType"], resource_id, resource, None, "POST"))
    return writes


def stamps(arrival_rate: float | None) -> Stamp:
    """Return the write time of a batch, given how many resources were written before it.

    By default the time of writing, as in the hub. With an arrival rate (resources/s) the
    batches are stamped back in time from the start instead, as if that much history had
    arrived at that pace before it; the newest resources stay the same while the database grows.
    """
    if arrival_rate is None:
        return lambda _: now()
    start = now()
    return lambda written: start - timedelta(milliseconds=round(written / arrival_rate * 1000))


async def fill(
    mongo: Mongo, store: ResourceStore, targets: Targets, size: int, stamp: Stamp
) -> None:
    """Write batches through the store until the database holds `size` resources."""
    started = time.perf_counter()
    first = len(targets.resources)
    while len(targets.resources) < size:
        written = len(targets.resources)
        writes = batch(written, min(BATCH, size - written))
        async with mongo.transaction() as session:
            stored = await store.write(writes, session, stamp(written))
        for s in stored:
            targets.resources.append((s.resource_type, s.id))
            if s.resource_type == "Patient":
                identifier = s.doc["identifier"][0]
                targets.identifiers.append(f"{identifier['system']}|{identifier['value']}")
            else:
                targets.observations.append((s.timestamp, s.doc["_id"]))
        rate = (len(targets.resources) - first) / (time.perf_counter() - started)
        progress(f"filled {len(targets.resources):,}/{size:,} ({rate:,.0f} resources/s)")


def lookups(
    mongo: Mongo, store: ResourceStore, targets: Targets, rng: random.Random
) -> dict[str, Lookup]:
    """Return each lookup by name: a call that picks a random target and counts the results."""

    async def read() -> int:
        resource_type, resource_id = rng.choice(targets.resources)
        return int(await store.current(resource_type, resource_id, UNRESTRICTED) is not None)

    async def match() -> int:
        token = clause("Patient", "identifier", rng.choice(targets.identifiers))
        driver = plan.driver("Patient", token)
        assert driver is not None
        query = {**driver.predicates[0], "resourceType": "Patient"}
        return len(await store.find(query, UNRESTRICTED))

    async def first_page() -> int:
        return len(await store.type_history("Observation", UNRESTRICTED, None, None, PAGE))

    async def later_page() -> int:
        after = rng.choice(targets.observations)
        return len(await store.type_history("Observation", UNRESTRICTED, None, after, PAGE))

    async def scan() -> int:
        return await mongo.resources.count_documents({"meta.versionId": "1"})

    return {
        "read by id": read,
        "match by identifier": match,
        "type history, first page": first_page,
        "type history, later page": later_page,
        "scan (control)": scan,
    }


async def timings(name: str, lookup: Lookup, repeat: int, budget: float) -> list[float]:
    """Return a lookup's latencies in ms.

    Calls stop at `repeat`, or once `budget` seconds are spent and MIN_CALLS are timed, so that
    a lookup that scans still finishes at large sizes.
    """
    if not await lookup():  # untimed: warms the cache and proves the lookup does some work
        raise RuntimeError(f"{name} found nothing: the benchmark would time no work")
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < repeat and (len(times) < MIN_CALLS or time.perf_counter() < deadline):
        started = time.perf_counter()
        await lookup()
        times.append((time.perf_counter() - started) * 1000)
    return times


def table(sizes: list[int], medians: dict[str, list[float]], calls: dict[str, list[int]]) -> str:
    """Format the medians per size, the last-to-first ratio, the verdict and the timed calls."""
    ratio_name = f"N{len(sizes)}/N1"
    head = "".join(f"{f'ms @ {size:,}':>14}" for size in sizes)
    lines = [f"{'lookup':26}{head}{ratio_name:>8}  {'verdict':15} calls"]
    for name, ms in medians.items():
        ratio = ms[-1] / ms[0]
        if name.startswith("scan"):
            verdict = "scan (control)"
        else:
            verdict = "ok" if ratio < FLAT else "SCAN"
        cells = "".join(f"{m:14.2f}" for m in ms)
        counts = "/".join(map(str, calls[name]))
        lines.append(f"{name:26}{cells}{ratio:8.2f}  {verdict:15} {counts}")
    return "\n".join(lines)


async def measure(uri: str, args: argparse.Namespace) -> str:
    """Grow one database through each size, time every lookup at each, and return the table."""
    mongo = Mongo(uri, DATABASE)
    await mongo.client.drop_database(DATABASE)
    await mongo.ensure_indexes()
    store = ResourceStore(mongo, search_keys)
    targets = Targets()
    stamp = stamps(args.arrival_rate)
    named = lookups(mongo, store, targets, random.Random(args.seed))
    medians: dict[str, list[float]] = {name: [] for name in named}
    calls: dict[str, list[int]] = {name: [] for name in named}
    try:
        for size in args.sizes:
            await fill(mongo, store, targets, size, stamp)
            for name, lookup in named.items():
                times = await timings(name, lookup, args.repeat, args.budget)
                medians[name].append(statistics.median(times))
                calls[name].append(len(times))
                slowest = max(times) if len(times) < 20 else statistics.quantiles(times, n=20)[-1]
                progress(
                    f"{size:,}: {name}: median {medians[name][-1]:.2f} ms, "
                    f"p95 {slowest:.2f} ms, max {max(times):.2f} ms, {len(times)} calls"
                )
    finally:
        await mongo.client.drop_database(DATABASE)
        await mongo.close()
    return table(args.sizes, medians, calls)


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per lookup")
    parser.add_argument(
        "--budget", type=float, default=15.0, help="seconds per lookup and size (3 calls at least)"
    )
    parser.add_argument(
        "--arrival-rate",
        type=float,
        help="stamp batches back in time as if resources arrived at this rate (per second)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mongodb-uri", help="use this server instead of an embedded one")
    args = parser.parse_args()
    if len(args.sizes) < 2 or args.sizes != sorted(set(args.sizes)):
        parser.error("--sizes needs two or more increasing sizes, e.g. --sizes 10000 100000")
    with database(args.mongodb_uri) as uri:
        print(asyncio.run(measure(uri, args)))


if __name__ == "__main__":
    main()
