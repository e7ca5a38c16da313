"""Measure the memory of `ehrhub sync`'s readers on large files: each format must stream.

Run from the repository root: python loadtests/bench_memory.py [--size-mb 1024] [--formats ...]
Per format it writes an input file (or CSV folder) of about --size-mb in a temporary folder,
then runs the reader `ehrhub sync` uses (`adapters.sync.sources.FORMATS[format]`) in a child
process that takes every output and counts it, and prints a markdown table: records, seconds,
records/s and the child's peak resident memory (VmHWM). Target: under 200 MB for 1 GB.
"""

import argparse
import contextlib
import csv
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from adapters import hl7v2  # noqa: E402
from adapters.base import Facility, Rejection  # noqa: E402
from adapters.xml130.generate import generate  # noqa: E402

HL7_FIXTURES = REPO / "tests" / "fixtures" / "hl7v2"
CSV_EXAMPLE = REPO / "adapters" / "csv" / "example"
SYNTHEA = REPO / "tests" / "fixtures" / "synthea"
FACILITY = Facility("79997", "Bench memory hospital")
TARGET_MB = 200
CHUNK = 8 * 2**20  # bytes written at a time
HUB_START_SECONDS = 60.0
# Templates carry this mark where a copy's number goes (`-{copy}` after an id).
MARK = "\x00"
CSV_KEYS = ("MA_BN", "MA_LK", "SO_CCCD")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
URN = re.compile(r'"urn:uuid:([0-9a-f-]{36})"')
# The progress line of `ehrhub sync`: "parsed N (new N)  sent N  refused N  rejected N ...".
SYNC_COUNTS = re.compile(r"parsed (\d+) .*?sent (\d+) .*?rejected (\d+)")


def copies_to_fill(template: str, size: int) -> int:
    """Return how many copies of a template (a copy number at each mark) make about `size`."""
    per_copy = len(template.encode()) + 5 * template.count(MARK)
    return max(1, size // per_copy)


def write_copies(out: IO[str], template: str, copies: int) -> None:
    """Write `template` again and again, copy k with `-k` at each mark, in big chunks."""
    pieces = template.split(MARK)
    step = max(1, CHUNK // len(template.encode()))
    for first in range(0, copies, step):
        out.write("".join(f"-{k}".join(pieces) for k in range(first, min(copies, first + step))))


def hl7v2_input(folder: Path, size: int) -> Path:
    """Write the fixture messages the adapter maps, again and again, each copy with its own
    MSH-10 and PID-3 (`-{copy}` appended), CR segment ends, in an FHS/BHS batch."""
    messages = []
    for path in sorted(HL7_FIXTURES.glob("*.hl7")):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for lines in hl7v2.split_messages(text):
            if not isinstance(next(hl7v2.parse("\r".join(lines), FACILITY)), Rejection):
                messages.append("\r".join(_marked_ids(lines)) + "\r")
    path = folder / "bench.hl7"
    with path.open("w", encoding="utf-8", newline="") as out:
        template = "".join(messages)
        out.write("FHS|^~\\&|BENCH\rBHS|^~\\&|BENCH\r")
        write_copies(out, template, copies_to_fill(template, size))
        out.write("BTS|0\rFTS|1\r")
    return path


def _marked_ids(lines: list[str]) -> list[str]:
    """Return a message's segments with the mark after MSH-10 and after PID-3's first value."""
    sep = lines[0][3]
    marked = []
    for line in lines:
        fields = line.split(sep)
        if line.startswith("MSH") and len(fields) > 9:
            fields[9] += MARK
        elif line.startswith("PID") and len(fields) > 3 and fields[3]:
            first = re.split(r"[\^~]", fields[3], maxsplit=1)[0]
            fields[3] = first + MARK + fields[3][len(first) :]
        marked.append(sep.join(fields))
    return marked


def xml130_input(folder: Path, size: int) -> Path:
    """Write a submission file of generated episodes (`adapters.xml130.generate`)."""
    sample = io.BytesIO()
    generate(sample, 50, 7)
    path = folder / "bench.xml"
    with path.open("wb") as out:
        generate(out, max(1, size * 50 // len(sample.getvalue())), 7)
    return path


def csv_input(folder: Path, size: int) -> Path:
    """Write the example export again and again into a folder with its mapping, each copy's
    patient, visit and citizen-ID keys with `-{copy}` appended."""
    export = folder / "csv"
    export.mkdir(exist_ok=True)
    files = sorted(CSV_EXAMPLE.glob("*.csv"))
    copies = max(1, size // sum(p.stat().st_size for p in files))
    for src in files:
        with src.open(encoding="utf-8-sig", newline="") as f:
            header, *rows = list(csv.reader(f, delimiter=";"))
        keyed = [i for i, name in enumerate(header) if name in CSV_KEYS]
        text = io.StringIO()
        writer = csv.writer(text, delimiter=";")
        for row in rows:
            writer.writerow([v + MARK if i in keyed and v else v for i, v in enumerate(row)])
        with (export / src.name).open("w", encoding="utf-8", newline="") as out:
            out.write("\ufeff" + ";".join(header) + "\r\n")
            write_copies(out, text.getvalue(), copies)
    (export / "mapping.toml").write_bytes((CSV_EXAMPLE / "mapping.toml").read_bytes())
    return export


def synthea_resources(bundle: dict[str, Any]) -> Iterator[str]:
    """Yield a Synthea bundle's resources as JSON, `urn:uuid` references written `Type/id` (as
    Bulk Data exports write them) and every uuid marked."""
    types = {
        e["fullUrl"].removeprefix("urn:uuid:"): e["resource"]["resourceType"]
        for e in bundle["entry"]
    }
    for entry in bundle["entry"]:
        text = json.dumps(entry["resource"], ensure_ascii=False)
        text = URN.sub(lambda m: f'"{types[m[1]]}/{m[1]}"', text)
        yield UUID.sub(lambda m: m[0] + MARK, text)


def fhir_input(folder: Path, size: int) -> Path:
    """Write an NDJSON export: the resources of the Synthea fixtures, again and again, each
    copy with `-{copy}` appended to every id and reference."""
    lines: list[str] = []
    for path in sorted(SYNTHEA.glob("*.json")):
        lines += synthea_resources(json.loads(path.read_bytes()))
    path = folder / "bench.ndjson"
    with path.open("w", encoding="utf-8") as out:
        template = "\n".join(lines) + "\n"
        write_copies(out, template, copies_to_fill(template, size))
    return path


def fhir_bundle_input(folder: Path, size: int) -> Path:
    """Write one collection Bundle JSON file of about `size` bytes: the resources of the
    largest Synthea fixture, again and again with new ids (references written `Type/id`)."""
    largest = max(SYNTHEA.glob("*.json"), key=lambda p: p.stat().st_size)
    bundle = json.loads(largest.read_bytes())
    template = "".join(f'{{"resource":{text}}},\n' for text in synthea_resources(bundle))
    path = folder / "bench-bundle.json"
    with path.open("w", encoding="utf-8") as out:
        out.write('{"resourceType":"Bundle","type":"collection","entry":[\n')
        write_copies(out, template, copies_to_fill(template, size))
        out.write('{"resource":{"resourceType":"Basic","id":"end","code":{"text":"end"}}}]}\n')
    return path


# Row name -> the format `ehrhub sync` reads it as, and how its input is written.
Inputs = dict[str, tuple[str, Callable[[Path, int], Path]]]
INPUTS: Inputs = {
    "hl7v2": ("hl7v2", hl7v2_input),
    "xml130": ("xml130", xml130_input),
    "csv": ("csv", csv_input),
    "fhir": ("fhir", fhir_input),
    "fhir-bundle": ("fhir", fhir_bundle_input),
}


def resident_mb(field: str) -> float:
    """Return this process's VmRSS or VmHWM (peak) from /proc, else ru_maxrss, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(fmt: str, path: Path) -> dict[str, Any]:
    """Read a file through `ehrhub sync`'s reader, counting its outputs; return the figures."""
    from adapters.sync.sources import FORMATS

    start_mb = resident_mb("VmRSS")
    started = time.perf_counter()
    records = rejected = resources = 0
    for output in FORMATS[fmt](path, FACILITY):
        if isinstance(output, Rejection):
            rejected += 1
        else:
            records += 1
            resources += len(output["entry"])
    return {
        "records": records,
        "rejected": rejected,
        "resources": resources,
        "seconds": time.perf_counter() - started,
        "start_mb": start_mb,
        "peak_mb": resident_mb("VmHWM"),
    }


def measure(name: str, size: int, folder: Path, hub: str | None = None) -> dict[str, Any]:
    """Write one format's input, read it in a child process (or, given a hub, send it with
    `ehrhub sync`), return the figures."""
    fmt, write = INPUTS[name]
    started = time.perf_counter()
    path = write(folder, size)
    files = [p for p in path.iterdir() if p.suffix == ".csv"] if path.is_dir() else [path]
    mb = sum(p.stat().st_size for p in files) / 2**20
    progress(f"{name}: wrote {mb:,.0f} MB in {time.perf_counter() - started:.0f} s; reading")
    figures = sync(fmt, path, folder, hub) if hub else read(fmt, path)
    figures.update(name=f"ehrhub sync {name}" if hub else name, input_mb=mb)
    progress(f"{name}: {figures}")
    for p in files:
        p.unlink()
    return figures


def read(fmt: str, path: Path) -> dict[str, Any]:
    """Run `child` in its own process on one input; return its figures."""
    command = [sys.executable, __file__, "--child", fmt, str(path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{fmt}: the reader failed:\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@contextlib.contextmanager
def running_hub(folder: Path) -> Iterator[str]:
    """Run a real hub (`ehrhub serve` on its embedded database under folder) for the sync row;
    yield its FHIR base."""
    from hub.store.embedded import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)]
    command += ["--data-dir", str(folder / "hub")]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + HUB_START_SECONDS
            while not _ready(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the hub did not start:\n{log.read()[-2000:]}")
                time.sleep(0.2)
            yield f"{base}/fhir"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(HUB_START_SECONDS)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def credentials(folder: Path, code: str) -> list[str]:
    """Register a system of the facility on the hub of `running_hub` (`ehrhub admin`); return
    the `ehrhub sync` flags that carry its client id and secret."""
    command = [sys.executable, "-m", "hub.cli", "admin", "create-client", "--role", "facility"]
    command += ["--facility", code, "--data-dir", str(folder / "hub"), "--json"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    made = json.loads(done.stdout.strip().splitlines()[-1])
    return ["--client-id", made["client_id"], "--client-secret", made["client_secret"]]


def sync(fmt: str, path: Path, folder: Path, hub: str) -> dict[str, Any]:
    """Run `ehrhub sync FORMAT PATH` to the hub as a process; return its figures, its peak RSS
    from the kernel's accounting of that one child."""
    outbox = folder / "outbox.sqlite"
    command = [sys.executable, "-m", "hub.cli", "sync", fmt, str(path), "--hub", hub]
    command += ["--facility", FACILITY.code, "--outbox", str(outbox)]
    command += credentials(folder, FACILITY.code)
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    for leftover in folder.glob("outbox.sqlite*"):
        leftover.unlink()
    counts = SYNC_COUNTS.findall(output)
    if proc.returncode not in (0, 3) or not counts:
        raise RuntimeError(f"ehrhub sync exited with {proc.returncode}:\n{output[-2000:]}")
    parsed, sent, rejected = (int(n) for n in counts[-1])
    if sent != parsed - rejected:
        raise RuntimeError(f"ehrhub sync sent {sent} of {parsed - rejected} records:\n{output}")
    return {
        "records": parsed - rejected,
        "rejected": rejected,
        "resources": None,
        "seconds": seconds,
        "start_mb": None,
        "peak_mb": usage.ru_maxrss / 1024,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Return the figures as a markdown table ("–" where a figure was not taken)."""
    lines = [
        "| format | input MB | records | rejected | resources | seconds | records/s | MB/s "
        "| RSS at start MB | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = "" if r["peak_mb"] < TARGET_MB else " ⚠"
        resources = "–" if r["resources"] is None else f"{r['resources']:,}"
        start = "–" if r["start_mb"] is None else f"{r['start_mb']:.0f}"
        lines.append(
            f"| {r['name']} | {r['input_mb']:,.0f} | {r['records']:,} | {r['rejected']:,} "
            f"| {resources} | {r['seconds']:,.0f} | {r['records'] / r['seconds']:,.0f} "
            f"| {r['input_mb'] / r['seconds']:,.1f} | {start} | {r['peak_mb']:.0f}{mark} |"
        )
    return "\n".join(lines)


def progress(text: str) -> None:
    """Print a progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="input size per format")
    parser.add_argument(
        "--bundle-mb", type=int, default=4, help="size of the single FHIR Bundle file"
    )
    parser.add_argument("--formats", default=",".join(INPUTS), help="comma-separated rows")
    parser.add_argument("--tmp", type=Path, help="folder for the inputs (default: system temp)")
    parser.add_argument(
        "--sync", choices=list(INPUTS), help="also run `ehrhub sync` on this format, to a real hub"
    )
    parser.add_argument(
        "--sync-mb", type=int, default=20, help="input size for --sync (the hub stores it all)"
    )
    parser.add_argument("--child", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.tmp) as tmp:
        for name in [n for n in args.formats.split(",") if n]:
            size = (args.bundle_mb if name == "fhir-bundle" else args.size_mb) * 2**20
            rows.append(measure(name, size, Path(tmp)))
        if args.sync:
            with running_hub(Path(tmp)) as hub:
                size = args.sync_mb * 2**20
                rows.append(measure(args.sync, size, Path(tmp), hub))
    print(table(rows))
    print(
        "\nEach format read by `adapters.sync.sources.FORMATS` in a child process that takes "
        f"every output; peak RSS is the child's VmHWM. Target: under {TARGET_MB} MB."
    )
    if args.sync:
        print(
            "`ehrhub sync` row: the whole command (parse -> outbox on disk -> POST) to a real hub "
            "on its embedded database; peak RSS is the sync process's ru_maxrss."
        )


if __name__ == "__main__":
    main()
