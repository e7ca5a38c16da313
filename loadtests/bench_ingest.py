"""Measure the hub's ingest rate and memory against raw insert_many on the same database.

Run from the repository root: python loadtests/bench_ingest.py [--rounds 3] [--concurrency 2]
"""

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient

from adapters.sync.credentials import TokenAuth

REPO = Path(__file__).resolve().parent.parent
HUB_DATABASE = "bench_hub"
# The hub requires a token: each Bundle is sent by a system of the facility it names, and one
# naming none (Synthea's) by this facility's.
BENCH_FACILITY = "BENCH"
FACILITY_SYSTEM = "https://moh.gov.vn/fhir/sid/facility"
RAW_DATABASE = "bench_raw"
RSS_TARGET_MB = 500.0
RATIO_TARGET = 0.5
SAMPLE_SECONDS = 0.2
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

Bundle = dict[str, Any]
Job = tuple[int, Bundle, bytes]


@dataclass
class Figures:
    """What one run measured."""

    hub_resources: int
    hub_seconds: float
    raw_resources: int
    raw_seconds: float
    hub_peak_rss_mb: float
    hub_vmhwm_mb: float

    @property
    def hub_rate(self) -> float:
        """Return hub resources per second."""
        return self.hub_resources / self.hub_seconds

    @property
    def raw_rate(self) -> float:
        """Return raw resources per second."""
        return self.raw_resources / self.raw_seconds

    @property
    def ratio(self) -> float:
        """Return the hub's rate as a fraction of the raw rate."""
        return self.hub_rate / self.raw_rate

    @property
    def target_holds(self) -> bool:
        """Return whether the hub keeps half the raw rate in under 500 MB."""
        return self.ratio >= RATIO_TARGET and self.hub_peak_rss_mb < RSS_TARGET_MB

    def as_json(self) -> dict[str, Any]:
        """Return the measured and the derived figures."""
        derived = {"hub_rate": self.hub_rate, "raw_rate": self.raw_rate, "ratio": self.ratio}
        return asdict(self) | derived | {"target_holds": self.target_holds}


def default_data_dir() -> Path:
    """Return the Synthea fixtures if the tests have them, else the shared reference data."""
    fixtures = REPO / "tests" / "fixtures" / "synthea"
    return fixtures if fixtures.is_dir() else REPO.parent / "shared" / "data" / "synthea"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="bundle folder")
    parser.add_argument("--rounds", type=int, default=3, help="times every bundle is sent")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel senders")
    parser.add_argument("--mongodb-uri", help="use this server instead of an embedded one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    return parser.parse_args(argv)


def load_bundles(folder: Path) -> list[Bundle]:
    """Return every JSON bundle in a folder, in name order."""
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise SystemExit(f"no *.json bundles in {folder}")
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def progress(message: str) -> None:
    """Tell the operator how far the run is."""
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def database(uri: str | None) -> Iterator[str]:
    """Yield a MongoDB URI: the given one, or an embedded server on a temporary folder."""
    if uri:
        yield uri
        return
    # The script may run from a checkout that is not installed: the hub's code is beside it.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from hub.store.embedded import EmbeddedMongo

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as data_dir:
        mongo = EmbeddedMongo(Path(data_dir) / "db", log_file=Path(data_dir) / "mongo.log")
        try:
            yield mongo.start()
        finally:
            mongo.stop()


@contextlib.contextmanager
def hub_process(uri: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run the hub in its own process, as in production; yield it and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "hub.cli", "serve", "--mongodb-uri", uri]
    command += ["--port", str(port), "--host", "127.0.0.1"]
    env = {**os.environ, "EHRHUB_DATABASE": HUB_DATABASE}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc, f"http://127.0.0.1:{port}"
        except BaseException:
            log.seek(0)
            progress("hub log (last lines):\n" + log.read().decode(errors="replace")[-3000:])
            raise
        finally:
            stop_process(proc)


async def register_facility(uri: str, code: str) -> tuple[str, str]:
    """Register a system of a facility on the hub's benchmark database; return its client id
    and secret."""
    from hub.auth.identities import identities_at, new_identity
    from hub.auth.roles import Role
    from hub.settings import Settings

    settings = Settings(mongodb_uri=uri, database=HUB_DATABASE)
    async with identities_at(uri, settings) as identities:
        identity, secret = new_identity(Role.FACILITY, facility=code, name="benchmark")
        await identities.create(identity)
    return identity.client_id, secret


class FacilityTokens:
    """The tokens of facility systems, each registered when first needed."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.made: dict[str, TokenAuth] = {}

    async def auth(self, code: str) -> TokenAuth:
        """Return the token of a system of the facility."""
        if code not in self.made:
            self.made[code] = TokenAuth(*await register_facility(self.uri, code))
        return self.made[code]


def facility_of(bundle: Bundle) -> str:
    """Return the facility a Bundle names (its Organization's code, or its resources'
    meta.source), or BENCH_FACILITY when it names none."""
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Organization":
            for identifier in resource.get("identifier", []):
                if identifier.get("system") == FACILITY_SYSTEM:
                    return str(identifier["value"])
        source = resource.get("meta", {}).get("source", "")
        if source.startswith(f"{FACILITY_SYSTEM}/"):
            return str(source.rpartition("/")[2])
    return BENCH_FACILITY


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process with SIGTERM, and kill it if it does not stop in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(proc: subprocess.Popen[bytes], base_url: str) -> None:
    """Wait until the hub answers /readyz with 200."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with code {proc.returncode} before it was ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the hub was not ready after {READY_TIMEOUT:.0f} s")


def memory_mb(pid: int, field: str) -> float:
    """Return a memory figure (VmRSS, VmHWM) of a process from /proc, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Sample a process's resident memory every 0.2 s and keep the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        """Sample until stopped or the process is gone."""
        with contextlib.suppress(OSError):
            while not self._done.is_set():
                self.peak_mb = max(self.peak_mb, memory_mb(self.pid, "VmRSS"))
                self._done.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        """Stop sampling and wait for the last sample."""
        self._done.set()
        self.join()


def jobs(bundles: list[Bundle], rounds: int) -> list[Job]:
    """Return every (round, bundle, body) to send, round after round."""
    # Encode once, so the client's JSON work stays out of the measured time.
    encoded = [(bundle, json.dumps(bundle).encode()) for bundle in bundles]
    return [(r, bundle, body) for r in range(1, rounds + 1) for bundle, body in encoded]


async def run_jobs(
    label: str, work: list[Job], concurrency: int, send: Callable[[Job], Awaitable[int]]
) -> tuple[int, float]:
    """Run the jobs with parallel senders; return resources written and seconds taken."""
    # One iterator shared by all senders: each takes the next job as soon as it is free.
    pending = iter(work)
    announced: set[int] = set()
    written = 0

    async def sender() -> None:
        nonlocal written
        for job in pending:
            if job[0] not in announced:
                announced.add(job[0])
                progress(f"{label}: round {job[0]}")
            # Await first: `written += await ...` would read `written` before the await.
            count = await send(job)
            written += count

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return written, time.perf_counter() - started


async def post_to_hub(
    base_url: str, work: list[Job], concurrency: int, tokens: FacilityTokens
) -> tuple[int, float]:
    """Post every bundle to the hub, each with a token of the facility it names, and check
    each transaction-response."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    # Registered before the clock starts: hashing a new secret is not ingest.
    for code in sorted({facility_of(bundle) for _, bundle, _ in work}):
        await tokens.auth(code)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, headers=headers) as client:

        async def send(job: Job) -> int:
            round_no, bundle, body = job
            auth = await tokens.auth(facility_of(bundle))
            response = await client.post("/fhir", content=body, auth=auth)
            if response.status_code != 200:
                raise RuntimeError(
                    f"round {round_no}: POST /fhir answered {response.status_code}: "
                    f"{response.text[:500]}"
                )
            answered = len(response.json().get("entry", []))
            if answered != len(bundle["entry"]):
                raise RuntimeError(f"sent {len(bundle['entry'])} entries, {answered} answered")
            return answered

        return await run_jobs("hub", work, concurrency, send)


async def insert_raw(uri: str, work: list[Job], concurrency: int) -> tuple[int, float]:
    """Insert every bundle's resources straight into a fresh collection, one insert_many each."""
    client: AsyncMongoClient[Bundle] = AsyncMongoClient(uri)
    try:
        await client.drop_database(RAW_DATABASE)
        collection = client[RAW_DATABASE]["resources"]

        async def send(job: Job) -> int:
            docs = [{**entry["resource"], "_id": ObjectId()} for entry in job[1]["entry"]]
            await collection.insert_many(docs)
            return len(docs)

        return await run_jobs("raw", work, concurrency, send)
    finally:
        await client.drop_database(RAW_DATABASE)
        await client.close()


async def drop_hub_database(uri: str) -> None:
    """Drop the hub's benchmark database so every run starts empty."""
    client: AsyncMongoClient[Bundle] = AsyncMongoClient(uri)
    try:
        await client.drop_database(HUB_DATABASE)
    finally:
        await client.close()


def measure(uri: str, work: list[Job], concurrency: int) -> Figures:
    """Run the hub phase, then the raw phase, on the same database server."""
    asyncio.run(drop_hub_database(uri))
    with hub_process(uri) as (proc, base_url):
        wait_ready(proc, base_url)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            hub_resources, hub_seconds = asyncio.run(
                post_to_hub(base_url, work, concurrency, FacilityTokens(uri))
            )
        finally:
            sampler.stop()
        vmhwm = memory_mb(proc.pid, "VmHWM")
    raw_resources, raw_seconds = asyncio.run(insert_raw(uri, work, concurrency))
    asyncio.run(drop_hub_database(uri))
    return Figures(hub_resources, hub_seconds, raw_resources, raw_seconds, sampler.peak_mb, vmhwm)


def table(figures: Figures) -> str:
    """Return the figures as a table."""
    rows = [
        f"{'':8}{'resources':>12}{'seconds':>10}{'resources/s':>14}",
        f"{'hub':8}{figures.hub_resources:>12,}{figures.hub_seconds:>10.2f}"
        f"{figures.hub_rate:>14,.0f}",
        f"{'raw':8}{figures.raw_resources:>12,}{figures.raw_seconds:>10.2f}"
        f"{figures.raw_rate:>14,.0f}",
        f"{'hub/raw':8}{'':>22}{figures.ratio:>14.2f}",
        "",
        f"hub peak RSS: {figures.hub_peak_rss_mb:.1f} MB (VmHWM {figures.hub_vmhwm_mb:.1f} MB)",
        f"target (hub/raw >= {RATIO_TARGET}, RSS < {RSS_TARGET_MB:.0f} MB): "
        + ("holds" if figures.target_holds else "does NOT hold"),
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    args = parse_args(argv)
    bundles = load_bundles(args.data)
    work = jobs(bundles, args.rounds)
    total = sum(len(bundle["entry"]) for bundle in bundles)
    progress(f"{len(bundles)} bundles, {total:,} resources, from {args.data}")
    with database(args.mongodb_uri) as uri:
        figures = measure(uri, work, args.concurrency)
    print(table(figures))
    if args.json:
        settings = {"rounds": args.rounds, "concurrency": args.concurrency, "data": str(args.data)}
        print(json.dumps(figures.as_json() | settings))


if __name__ == "__main__":
    main()
