"""Measure the hospital adapters' conversion rate per format against the hub's ingest rate,
and `ehrhub sync xml130` end to end, from file to stored.

Run from the repository root: python loadtests/bench_adapters.py [--quick]
Per format (HL7 v2, XML130, CSV, FHIR NDJSON) it converts a few thousand records in process
(parse -> transaction Bundle, no hub), timed, then again under tracemalloc for the peak memory.
It starts an embedded database and the hub (as bench_ingest.py does), posts a sample of each
format's Bundles to measure the hub's ingest of them, and prints the ratio conversion/ingest
(target >= 5). Last, it runs `ehrhub sync xml130 FILE --hub URL` as a process on a new file.
"""

import argparse
import asyncio
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_ingest import (  # noqa: E402
    Bundle,
    FacilityTokens,
    RssSampler,
    database,
    default_data_dir,
    drop_hub_database,
    facility_of,
    hub_process,
    jobs,
    post_to_hub,
    progress,
    register_facility,
    stop_process,
    wait_ready,
)
from bench_search import Population, bundle_of, count_resources, load_templates  # noqa: E402

from adapters import csv as csv_adapter  # noqa: E402
from adapters import fhir as fhir_adapter  # noqa: E402
from adapters import hl7v2, xml130  # noqa: E402
from adapters.base import Facility, Output, Rejection  # noqa: E402
from adapters.xml130.generate import generate  # noqa: E402

HL7_FIXTURES = REPO / "tests" / "fixtures" / "hl7v2"
CSV_EXAMPLE = REPO / "adapters" / "csv" / "example"
# The Synthea patient whose bundle becomes the NDJSON export (1,111 resources).
FHIR_TEMPLATE = "Fletcher_Hyatt"
RATIO_TARGET = 5.0
# Keys of the CSV example that must stay unique across copies.
CSV_KEYS = ("MA_BN", "MA_LK", "SO_CCCD")
_URN = re.compile(r'"urn:uuid:([0-9a-f-]{36})"')


@dataclass
class Sizes:
    """How much each format converts, how many Bundles go to the hub, and the e2e file."""

    hl7v2: int  # messages
    xml130: int  # episodes (HOSO)
    csv: int  # patients
    fhir: int  # NDJSON lines (resources)
    sample: int  # Bundles per format posted to the hub (FHIR: a fifth, they are larger)
    sync: int  # episodes of the end-to-end file


QUICK = Sizes(hl7v2=1_000, xml130=300, csv=500, fhir=5_000, sample=30, sync=60)
DEFAULT = Sizes(hl7v2=5_000, xml130=2_000, csv=3_000, fhir=50_000, sample=100, sync=500)


@dataclass
class Conversion:
    """What converting one format measured."""

    name: str
    unit: str
    records: int = 0
    resources: int = 0
    rejected: int = 0
    lines: int = 0  # NDJSON lines of the input, when a record is a line
    seconds: float = 0.0
    peak_mb: float = 0.0
    sample: list[Bundle] = field(default_factory=list)
    hub_resources: int = 0
    hub_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Return resources converted per second."""
        return self.resources / self.seconds

    @property
    def hub_rate(self) -> float:
        """Return the hub's ingest of this format's Bundles, resources per second."""
        return self.hub_resources / self.hub_seconds if self.hub_seconds else 0.0


# Inputs: each returns a callable yielding the adapter's outputs, so it can run twice.
Source = Callable[[], Iterator[Output]]


def hl7v2_source(folder: Path, messages: int) -> Source:
    """Return the mapped fixture messages, repeated and renumbered up to `messages`.

    Message n comes from its own facility (every identifier is facility-scoped, so its
    patients, visits and orders are new) and copy k of a message gets MSH-10 `{control id}-{k}`.
    """
    mapped: list[str] = []
    for path in sorted(folder.glob("*.hl7")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for lines in hl7v2.split_messages(text):
            message = "\r".join(lines)
            if not isinstance(next(hl7v2.parse(message, Facility("00000"))), Rejection):
                mapped.append(message)
    copies = []
    for n in range(messages):
        k, i = divmod(n, len(mapped))
        separator = mapped[i][3]
        fields = mapped[i].split(separator, 10)
        fields[9] = f"{fields[9]}-{k}"
        copies.append((Facility(f"9{n:06d}", "Bench copy"), separator.join(fields)))

    def outputs() -> Iterator[Output]:
        for facility, message in copies:
            yield from hl7v2.parse(message, facility, "bench")

    return outputs


def xml130_source(path: Path, episodes: int, seed: int) -> Source:
    """Return the outputs of a generated XML130 file of `episodes` HOSO."""
    with path.open("wb") as out:
        generate(out, episodes, seed)
    return lambda: xml130.parse(path)


def csv_source(folder: Path, patients: int) -> Source:
    """Return the outputs of the CSV example replicated to about `patients` patients.

    Copy k appends `-k` to every patient, visit and citizen-ID value, so its keys are new.
    """
    copies = max(1, patients // (sum(1 for _ in csv_rows(CSV_EXAMPLE / "benh_nhan.csv")) - 1))
    for src in CSV_EXAMPLE.glob("*.csv"):
        header, *rows = list(csv_rows(src))
        keyed = [i for i, name in enumerate(header) if name in CSV_KEYS]
        with (folder / src.name).open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(header)
            for k in range(copies):
                for row in rows:
                    writer.writerow([f"{v}-{k}" if i in keyed else v for i, v in enumerate(row)])
    shutil.copy(CSV_EXAMPLE / "mapping.toml", folder / "mapping.toml")
    facility = Facility("79999", "Bench CSV hospital")
    return lambda: csv_adapter.parse(folder, folder / "mapping.toml", facility)


def csv_rows(path: Path) -> Iterator[list[str]]:
    """Yield the rows of one of the example's files (`;`, UTF-8 with a byte-order mark)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        yield from csv.reader(f, delimiter=";")


def fhir_source(data: Path, path: Path, lines: int) -> Source:
    """Return the outputs of an NDJSON export: copies of a Synthea bundle with new ids.

    Each copy's urn:uuid references become `Type/id`, as a Bulk Data export writes them.
    """
    templates = load_templates(data)
    population = Population(templates, seed=11)
    template = next(t for t in templates if t.name.startswith(FHIR_TEMPLATE))
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < lines:
            bundle = bundle_of(population.new(template))
            refs = {
                e["fullUrl"].removeprefix("urn:uuid:"): e["resource"]["resourceType"]
                for e in bundle["entry"]
            }
            for entry in bundle["entry"][: lines - written]:
                text = json.dumps(entry["resource"], ensure_ascii=False)
                text = _URN.sub(lambda m, refs=refs: f'"{refs[m[1]]}/{m[1]}"', text)
                out.write(text + "\n")
                written += 1
    facility = Facility("79998", "Bench FHIR hospital")
    return lambda: fhir_adapter.parse(path, facility)


def convert(result: Conversion, outputs: Source, sample: int) -> None:
    """Time one conversion pass (keeping the first Bundles for the hub), then measure the peak
    memory of a second pass under tracemalloc."""
    started = time.perf_counter()
    for output in outputs():
        if isinstance(output, Rejection):
            result.rejected += 1
            continue
        result.records += 1
        result.resources += len(output["entry"])
        if len(result.sample) < sample:
            result.sample.append(output)
    result.seconds = time.perf_counter() - started
    if result.lines:
        result.records = result.lines  # NDJSON: a record is a line, a Bundle holds 100
    tracemalloc.start()
    for _ in outputs():
        pass
    result.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    progress(
        f"{result.name}: {result.records:,} {result.unit} -> {result.resources:,} resources "
        f"in {result.seconds:.2f} s ({result.rejected} rejected), peak {result.peak_mb:.1f} MB"
    )


def ehrhub_command() -> list[str]:
    """Return how to run `ehrhub`: the installed script beside this Python, else the module."""
    script = Path(sys.executable).with_name("ehrhub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hub.cli"]


def sync_end_to_end(uri: str, base_url: str, path: Path, outbox: Path) -> dict[str, Any]:
    """Run `ehrhub sync xml130 FILE` into the hub as a process; return its figures."""
    bundles = [o for o in xml130.parse(path) if not isinstance(o, Rejection)]
    sent = sum(len(b["entry"]) for b in bundles)
    before = asyncio.run(count_resources(uri))
    client_id, secret = asyncio.run(register_facility(uri, facility_of(bundles[0])))
    command = [*ehrhub_command(), "sync", "xml130", str(path), "--hub", f"{base_url}/fhir"]
    command += ["--outbox", str(outbox), "--client-id", client_id, "--client-secret", secret]
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            code = proc.wait(1800)
        finally:
            sampler.stop()
            stop_process(proc)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"ehrhub sync exited with {code}:\n{output[-2000:]}")
    stored = asyncio.run(count_resources(uri)) - before
    progress(output.strip().splitlines()[-1])
    return {
        "records": len(bundles),
        "resources": sent,
        "stored": stored,
        "seconds": seconds,
        "peak_rss_mb": sampler.peak_mb,
    }


def table(results: list[Conversion], e2e: dict[str, Any]) -> str:
    """Return the conversion table and the end-to-end line."""
    lines = [
        f"{'format':8}{'records':>17}{'resources':>10}{'records/s':>11}{'resources/s':>13}"
        f"{'peak MB':>9}{'hub res/s':>11}{'conv/hub':>10}",
    ]
    for r in results:
        ratio = r.rate / r.hub_rate if r.hub_rate else 0.0
        mark = "" if ratio >= RATIO_TARGET else " !"
        records = f"{r.records:,} {r.unit}"
        lines.append(
            f"{r.name:8}{records:>17}{r.resources:>10,}{r.records / r.seconds:>11,.0f}"
            f"{r.rate:>13,.0f}{r.peak_mb:>9.1f}{r.hub_rate:>11,.0f}{ratio:>9.1f}x{mark}"
        )
    worst = min(r.rate / r.hub_rate for r in results)
    lines.append(
        f"conversion in process (parse -> Bundle); peak MB: tracemalloc, a second pass; hub "
        f"res/s: POST /fhir of a sample of that format's Bundles. Target conv/hub >= "
        f"{RATIO_TARGET:.0f}x: " + ("holds" if worst >= RATIO_TARGET else "does NOT hold")
    )
    lines.append("")
    lines.append(
        f"ehrhub sync xml130 (file -> stored, one process): {e2e['records']:,} episodes, "
        f"{e2e['resources']:,} resources sent ({e2e['stored']:,} new in the hub) in "
        f"{e2e['seconds']:.1f} s: {e2e['records'] / e2e['seconds']:,.0f} records/s, "
        f"{e2e['resources'] / e2e['seconds']:,.0f} resources/s; sync peak RSS "
        f"{e2e['peak_rss_mb']:.0f} MB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel senders to the hub")
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="Synthea bundles")
    parser.add_argument("--mongodb-uri", help="use this server instead of an embedded one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else DEFAULT
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        work = Path(tmp)
        (work / "csv").mkdir()
        progress("preparing inputs")
        plan = [
            (Conversion("hl7v2", "messages"), hl7v2_source(HL7_FIXTURES, sizes.hl7v2)),
            (Conversion("xml130", "episodes"), xml130_source(work / "x.xml", sizes.xml130, 1)),
            (Conversion("csv", "patients"), csv_source(work / "csv", sizes.csv)),
            (
                Conversion("fhir", "lines", lines=sizes.fhir),
                fhir_source(args.data, work / "f.ndjson", sizes.fhir),
            ),
        ]
        results = []
        for result, outputs in plan:
            sample = sizes.sample // 5 if result.name == "fhir" else sizes.sample
            convert(result, outputs, sample)
            results.append(result)
        sync_file = work / "sync.xml"
        with sync_file.open("wb") as out:
            generate(out, sizes.sync, 2)  # another seed: records the hub has not seen
        with database(args.mongodb_uri) as uri:
            asyncio.run(drop_hub_database(uri))
            with hub_process(uri) as (proc, base_url):
                wait_ready(proc, base_url)
                tokens = FacilityTokens(uri)
                for r in results:
                    work_items = jobs(r.sample, 1)
                    r.hub_resources, r.hub_seconds = asyncio.run(
                        post_to_hub(base_url, work_items, args.concurrency, tokens)
                    )
                    progress(f"hub: {r.name}: {r.hub_rate:,.0f} resources/s")
                progress(f"ehrhub sync xml130: {sizes.sync:,} episodes")
                e2e = sync_end_to_end(uri, base_url, sync_file, work / "outbox.sqlite")
            asyncio.run(drop_hub_database(uri))
    print(table(results, e2e))
    print(f"run took {time.perf_counter() - started:.0f} s")
    if args.json:
        figures = {
            r.name: {
                "records": r.records,
                "resources": r.resources,
                "seconds": r.seconds,
                "peak_mb": r.peak_mb,
                "hub_rate": r.hub_rate,
                "ratio": r.rate / r.hub_rate,
            }
            for r in results
        }
        print(json.dumps({"conversion": figures, "sync": e2e}))


if __name__ == "__main__":
    main()
