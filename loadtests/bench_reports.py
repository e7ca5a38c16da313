"""Time the ministry's reports over a year of counters, at 100,000 and 1,000,000 resources.

Run from the repository root: python loadtests/bench_reports.py [--facilities 1000] [--quick]
It starts an embedded database and the hub's app in this process (authentication on), imports
the facilities into the registry (`import_facilities`: spread over the vn pack's provinces,
levels, types and ownerships), then writes straight to the `stats` collection what a year of
ingest leaves there (hub/reporting/counters.py): per facility its totals (`f|`), one document
per day (`d|`), the people of each day (`n|`). It does so twice, for 100,000 and 1,000,000
resources: the same documents with bigger numbers, since the counters grow with facilities and
days, never with records. At each size it times every report endpoint through the HTTP app
with a ministry token, after a warm-up, and prints p50, p95 and max, the ratio 1M/100k and
the target (p95 under 100 ms). `--quick` is 200 facilities and 30 days.
"""

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
for where in (REPO, REPO / "loadtests"):
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))

from bench_consent import client_as, hub  # noqa: E402
from bench_ingest import database  # noqa: E402

from fhir_profiles.pack import pack_of  # noqa: E402
from hub.core.clock import Clock  # noqa: E402
from hub.fhir.profiling import validator_for  # noqa: E402
from hub.reporting.counters import DOT, day_key, facility_key  # noqa: E402
from hub.reporting.registry import PROVINCE_SYSTEM, Facility, import_facilities  # noqa: E402
from hub.settings import Settings  # noqa: E402

SIZES = (100_000, 1_000_000)
# The target, for every report endpoint.
TARGET_MS = 100.0
# How far back the past-date coverage report looks (half the days under --quick).
PAST_DAYS = 30
INSERT_BATCH = 10_000
# Rules each facility breaks, from the pack's catalogue.
RULES_PER_FACILITY = 4
BASE_URL = "http://bench"
# The country's clock: its local days are the counters' days, and "today" is its today.
CLOCK = Clock(Settings().zone)
LEVELS = ("central", "provincial", "provincial", "regional", "commune", "commune", "commune")
TYPES = ("hospital", "health-centre", "polyclinic", "clinic", "health-station", "maternity-home")
# Each record type's share of what a facility sends; Observations take what is left.
RECORD_SHARES = {
    "Patient": 0.08,
    "Encounter": 0.16,
    "Condition": 0.12,
    "MedicationRequest": 0.10,
    "Procedure": 0.04,
    "DiagnosticReport": 0.05,
    "Consent": 0.02,
}


@dataclass
class Timed:
    """The latencies of one endpoint at one size, in ms."""

    times: list[float] = field(default_factory=list)
    first: float = 0.0  # the warm-up call: reads what later calls find remembered or kept

    def p(self, share: float) -> float:
        """Return a percentile of the latencies."""
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def progress(message: str) -> None:
    """Tell the operator how far the run is."""
    print(message, file=sys.stderr, flush=True)


def facilities(count: int, rng: random.Random) -> list[Facility]:
    """Return `count` facilities spread over the provinces, levels, types and ownerships."""
    provinces = [c["code"] for c in pack_of("vn").code_systems[PROVINCE_SYSTEM]["concept"]]
    return [
        Facility(
            code=f"{10000 + i}",
            name=f"Cơ sở y tế {10000 + i}",
            province=provinces[i % len(provinces)],
            level=rng.choice(LEVELS),
            type=rng.choice(TYPES),
            ownership="private" if rng.random() < 0.3 else "public",
        )
        for i in range(count)
    ]


def split(total: int, parts: int) -> list[int]:
    """Split a whole number into `parts` whole numbers that add up to it."""
    each, left = divmod(total, parts)
    return [each + (i < left) for i in range(parts)]


def by_type(records: int) -> dict[str, int]:
    """Split a day's records over the record types."""
    found = {t: int(records * share) for t, share in RECORD_SHARES.items()}
    found["Observation"] = records - sum(found.values())
    return found


def day_counters(records: dict[str, int], rules: list[str], rng: random.Random) -> dict[str, Any]:
    """Return the counters of a facility's day that wrote these records, as `Counters._add`
    leaves them (dotted increments are nested fields)."""
    made = sum(records.values())
    patients = records["Patient"]
    checked = made - records["Consent"]
    delays = made - patients
    return {
        "accepted": made // 40 + 1,
        "refused": int(rng.random() < 0.1),
        "records": {t: n for t, n in records.items() if n},
        "patients": patients,
        "people": patients - patients // 20,
        "duplicates": patients // 50,
        "consents_permit": records["Consent"],
        "delays": delays,
        "delay_seconds": delays * rng.uniform(3600, 40_000),
        "timely": int(delays * rng.uniform(0.6, 0.98)),
        "q": {
            "checked": checked,
            "valid": int(checked * 0.9),
            "complete": int(checked * 0.8),
            "coded": int(checked * 0.85),
            "identified": int(patients * 0.95),
            "patients": patients,
        },
        "rules": {
            r.replace(".", DOT): max(1, checked // (10 * (i + 1))) for i, r in enumerate(rules)
        },
    }


def add_into(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add a day's counters into a facility's totals."""
    for name, value in part.items():
        if isinstance(value, dict):
            add_into(total.setdefault(name, {}), value)
        else:
            total[name] = total.get(name, 0) + value


def counters(
    registry: list[Facility], size: int, days: list[date], rules: list[str], seed: int
) -> Iterator[dict[str, Any]]:
    """Yield the stats documents of a year: every facility's days and totals, whose records
    add up to `size`, and the people of each day."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0, 1) for _ in registry]
    whole = sum(weights)
    shares = [int(size * w / whole) for w in weights]
    shares[0] += size - sum(shares)
    people: dict[str, int] = {}
    for facility, records in zip(registry, shares, strict=True):
        mine = rng.sample(rules, RULES_PER_FACILITY)
        total: dict[str, Any] = {}
        for day, made in zip(days, split(records, len(days)), strict=True):
            found = day_counters(by_type(made), mine, rng)
            add_into(total, found)
            name = day.isoformat()
            people[name] = people.get(name, 0) + found["people"]
            named = {"kind": "day", "facility": facility.code, "day": name}
            yield {"_id": day_key(facility.code, name)} | named | found
        yield {
            "_id": facility_key(facility.code),
            "kind": "facility",
            "facility": facility.code,
            "first": CLOCK.start_of(days[0]) + timedelta(hours=8),
            "last": CLOCK.start_of(days[-1]) + timedelta(hours=8),
        } | total
    for name, n in people.items():
        yield {"_id": f"n|{name}", "kind": "people", "day": name, "people": n}


async def fill(app: Any, docs: Iterator[dict[str, Any]]) -> dict[str, int]:
    """Empty the stats collection and insert the documents in batches; count them by kind."""
    mongo = app.state.mongo
    await mongo.stats.drop()
    await mongo.ensure_indexes()
    kinds: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    for doc in docs:
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        batch.append(doc)
        if len(batch) == INSERT_BATCH:
            await mongo.stats.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await mongo.stats.insert_many(batch, ordered=False)
    return kinds


def endpoints(facility: str, past: date) -> list[str]:
    """Return the report URLs to time."""
    return [
        "/reports/coverage",
        "/reports/coverage?format=csv",
        f"/reports/coverage?date={past}",
        "/reports/roadmap",
        "/reports/quality",
        f"/reports/quality/{facility}",
    ]


async def check(client: httpx.AsyncClient, size: int, registered: int) -> None:
    """Check that the coverage report counts every facility and every resource written."""
    answer = await client.get("/reports/coverage")
    if answer.status_code != 200:
        raise SystemExit(f"/reports/coverage answered {answer.status_code}: {answer.text[:300]}")
    national = answer.json()["national"]
    if (national["registered"], national["records"]) != (registered, size):
        raise SystemExit(f"coverage counts {national}, expected {registered} and {size}")


async def time_all(
    client: httpx.AsyncClient,
    urls: list[str],
    repeat: int,
    budget: float,
    before: Callable[[], None] = lambda: None,
) -> dict[str, Timed]:
    """Time each URL `repeat` times in a row after a warm-up (fewer, at least 3, once
    `budget` seconds are spent on it); every answer must be 200."""
    found: dict[str, Timed] = {}
    for url in urls:
        timed = found[url] = Timed()
        before()
        started = time.perf_counter()
        await client.get(url)
        timed.first = (time.perf_counter() - started) * 1000
        spent = time.perf_counter()
        while len(timed.times) < repeat and (
            len(timed.times) < 3 or time.perf_counter() - spent < budget
        ):
            before()
            started = time.perf_counter()
            answer = await client.get(url)
            timed.times.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise SystemExit(f"{url} answered {answer.status_code}: {answer.text[:300]}")
        progress(f"  {url}: {len(timed.times)} calls, p95 {timed.p(0.95):.0f} ms")
    return found


def table(results: dict[int, dict[str, Timed]]) -> str:
    """Format each endpoint's latencies at each size, the ratio and the target."""
    small, large = SIZES
    head = f"{'endpoint':56}{'calls':>6}"
    for size in SIZES:
        tag = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        head += f"{'p50 ' + tag:>10}{'p95 ' + tag:>10}{'max ' + tag:>10}"
    lines = [head + f"{'first 1M':>10}{'p95 1M/100k':>13}  target p95 < {TARGET_MS:.0f} ms"]
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        row = f"{name:56}{min(len(a.times), len(b.times)):>6}"
        for t in (a, b):
            row += f"{t.p(0.5):>10.1f}{t.p(0.95):>10.1f}{max(t.times):>10.1f}"
        row += f"{b.first:>10.1f}"
        holds = max(a.p(0.95), b.p(0.95)) < TARGET_MS
        lines.append(
            row + f"{b.p(0.95) / a.p(0.95):>13.2f}  {'holds' if holds else 'does NOT hold'}"
        )
    return "\n".join(lines)


async def measure(uri: str, args: argparse.Namespace) -> None:
    """Import the registry, write the counters of each size, time the reports, print."""
    rng = random.Random(args.seed)
    registry = facilities(args.facilities, rng)
    today = CLOCK.today()
    days = [today - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    past = today - timedelta(days=min(PAST_DAYS, args.days // 2))
    rules = sorted(validator_for("vn").rules())
    results: dict[int, dict[str, Timed]] = {}
    async with (
        hub(uri, "bench_reports") as app,
        client_as(app, "ministry", timeout=600, name="bench ministry") as client,
    ):
        started = time.perf_counter()
        when = CLOCK.start_of(days[0]) + timedelta(hours=7)
        report = await import_facilities(app.state.store, registry, when)
        took = time.perf_counter() - started
        progress(f"registry: {report.summary()} in {took:.1f} s")
        for size in SIZES:
            started = time.perf_counter()
            kinds = await fill(app, counters(registry, size, days, rules, args.seed))
            took = time.perf_counter() - started
            print(
                f"{size:,} resources: stats holds {sum(kinds.values()):,} documents "
                f"({kinds.get('facility', 0):,} f|, {kinds.get('day', 0):,} d|, "
                f"{kinds.get('people', 0):,} n|), inserted in {took:.1f} s",
                flush=True,
            )
            app.state.counters.forget()
            await check(client, size, len(registry))
            urls = endpoints(registry[0].code, past)
            results[size] = await time_all(client, urls, args.repeat, args.budget)
            # As a process's first report: the running totals read before answering.
            current = [u for u in urls if "date=" not in u]
            forget = app.state.counters.forget
            fresh = await time_all(client, current, args.repeat, args.budget, forget)
            results[size] |= {f"{u} (totals re-read)": t for u, t in fresh.items()}
    print()
    print(
        f"{len(registry):,} facilities, {len(days)} days; sequential requests, in-process "
        f"ASGI client, ministry token; ms"
    )
    print(table(results))


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facilities", type=int, default=1000, help="facilities registered")
    parser.add_argument("--days", type=int, default=365, help="days of counters per facility")
    parser.add_argument("--quick", action="store_true", help="200 facilities, 30 days")
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per endpoint")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per endpoint at most")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.facilities, args.days = 200, 30
    if args.facilities < 1 or args.days < 2:
        parser.error("--facilities needs at least 1 and --days at least 2")
    with database(None) as uri:  # an embedded server on a temporary folder
        asyncio.run(measure(uri, args))


if __name__ == "__main__":
    main()
