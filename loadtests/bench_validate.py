"""Measure what the national profiles cost: validation alone, and ingest with them on and off.

Run from the repository root: python loadtests/bench_validate.py [--rounds 2] [--pairs 2]

1. Validation alone, in this process: every resource of the Synthea bundles (`--data`) and of
   simulated Vietnamese hospital bundles (adapters/simulate/sample.py: citizen IDs, ICD-10,
   LOINC, UCUM), checked against the country pack's profiles (`--country`, default vn) and,
   for comparison, against the FHIR R4 base model: resources per second, per type.
2. Ingest through the hub, as bench_ingest.py runs it (an embedded database, the hub in its own
   process, every bundle sent `--rounds` times by `--concurrency` senders), once with
   EHRHUB_PROFILE_MODE=off and once with lenient (checked, findings stored), `--pairs` times
   in turns, so that a slower minute of a shared machine hits both.
The target: the profiles cost at most 30% of ingest throughput (lenient/off >= 0.7).
"""

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for where in (REPO, REPO / "loadtests"):
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))

import bench_ingest  # noqa: E402

from adapters.simulate.sample import sample_bundles  # noqa: E402
from fhir_profiles.pack import load  # noqa: E402
from fhir_profiles.validator import Validator  # noqa: E402
from hub.fhir.validate import validate_resource  # noqa: E402

COST_TARGET = 0.30
Resource = dict[str, Any]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=bench_ingest.default_data_dir())
    parser.add_argument("--country", default="vn", help="the country pack")
    parser.add_argument("--simulated", type=int, default=200, help="simulated patients")
    parser.add_argument("--rounds", type=int, default=2, help="times every bundle is sent")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel senders")
    parser.add_argument("--pairs", type=int, default=2, help="off/lenient runs, in turns")
    parser.add_argument("--mongodb-uri", help="use this server instead of an embedded one")
    parser.add_argument("--skip-ingest", action="store_true", help="validation alone only")
    return parser.parse_args(argv)


def resources_of(bundles: list[Resource]) -> list[Resource]:
    """Return every entry's resource."""
    return [e["resource"] for b in bundles for e in b.get("entry", []) if "resource" in e]


def time_each(resources: list[Resource], check: Any) -> dict[str, tuple[int, float]]:
    """Return, per type, how many resources and the seconds `check` took on them."""
    spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for resource in resources:
        start = time.perf_counter()
        check(resource)
        spent[resource["resourceType"]][1] += time.perf_counter() - start
        spent[resource["resourceType"]][0] += 1
    return {t: (int(n), s) for t, (n, s) in spent.items()}


def validation_table(resources: list[Resource], validator: Validator) -> tuple[str, float]:
    """Validate every resource against the profiles and the base model; return the table and
    the profiles' overall rate."""
    for resource in resources[:200]:  # warm up: compiled paths, caches
        validator.validate(resource)
    profile = time_each(resources, validator.validate)
    base = time_each(resources, validate_resource)
    findings = sum(len(validator.validate(r)) for r in resources)
    rows = [
        f"{'type':22}{'resources':>10}{'profile µs':>12}{'base µs':>10}{'profile/s':>12}",
    ]
    for rtype in sorted(profile, key=lambda t: -profile[t][0]):
        n, seconds = profile[rtype]
        profiled = " (no profile)" if rtype not in validator.by_type else ""
        rows.append(
            f"{rtype:22}{n:>10,}{seconds / n * 1e6:>12.0f}{base[rtype][1] / n * 1e6:>10.0f}"
            f"{n / seconds:>12,.0f}{profiled}"
        )
    total = len(resources)
    profile_seconds = sum(s for _, s in profile.values())
    base_seconds = sum(s for _, s in base.values())
    rows.append(
        f"{'all':22}{total:>10,}{profile_seconds / total * 1e6:>12.0f}"
        f"{base_seconds / total * 1e6:>10.0f}{total / profile_seconds:>12,.0f}"
    )
    rows.append(f"findings: {findings:,} ({findings / total:.1f} a resource)")
    return "\n".join(rows), total / profile_seconds


def ingest(uri: str, work: list[bench_ingest.Job], concurrency: int, mode: str) -> float:
    """Return the hub's ingest rate with one profile mode."""
    os.environ["EHRHUB_PROFILE_MODE"] = mode
    figures = bench_ingest.measure(uri, work, concurrency)
    bench_ingest.progress(f"profile mode {mode}: {figures.hub_rate:,.0f} resources/s")
    return figures.hub_rate


def main(argv: list[str] | None = None) -> None:
    """Run both parts and print their tables."""
    args = parse_args(argv)
    synthea = bench_ingest.load_bundles(args.data)
    simulated = sample_bundles(args.simulated)
    validator = Validator(load(args.country))
    resources = resources_of(simulated) + resources_of(synthea)
    bench_ingest.progress(f"validating {len(resources):,} resources against {args.country}")
    table, rate = validation_table(resources, validator)
    print(f"\n1. Validation alone ({args.country} pack, one core)\n{table}")
    if args.skip_ingest:
        return
    work = bench_ingest.jobs(synthea + simulated, args.rounds)
    sent = sum(len(job[1]["entry"]) for job in work)
    bench_ingest.progress(f"ingest: {sent:,} resources a run, {args.pairs} pairs of runs")
    rates: dict[str, list[float]] = {"off": [], "lenient": []}
    with bench_ingest.database(args.mongodb_uri) as uri:
        for _ in range(args.pairs):
            for mode in rates:
                rates[mode].append(ingest(uri, work, args.concurrency, mode))
    off, lenient = (statistics.median(rates[m]) for m in ("off", "lenient"))
    cost = 1 - lenient / off
    print(
        f"\n2. Ingest through the hub ({sent:,} resources a run, {args.concurrency} senders)\n"
        f"{'profiles':12}{'runs (resources/s)':>36}{'median':>10}\n"
        + "\n".join(
            f"{mode:12}{', '.join(f'{r:,.0f}' for r in rates[mode]):>36}"
            f"{statistics.median(rates[mode]):>10,.0f}"
            for mode in rates
        )
        + f"\nprofile validation costs {cost:.0%} of ingest throughput "
        f"(validation alone: {rate:,.0f} resources/s); target at most {COST_TARGET:.0%}: "
        + ("holds" if cost <= COST_TARGET else "does NOT hold")
    )


if __name__ == "__main__":
    main()
