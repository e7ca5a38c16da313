"""Break the hub's ingest cost into layers, each against raw insert_many on the same server.

Run from the repository root: python loadtests/bench_layers.py [--rounds 2]
Layers: raw insert_many; the store's write (hub layout, indexes, one transaction per bundle)
without validation; base-model validation alone (no database).
"""

import argparse
import asyncio
import copy
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hub.fhir.validate import validate_resource  # noqa: E402
from hub.search.extract import keys as search_keys  # noqa: E402
from hub.store.embedded import EmbeddedMongo  # noqa: E402
from hub.store.mongo import Mongo  # noqa: E402
from hub.store.resources import ResourceStore, Write, now  # noqa: E402

Resources = list[dict[str, Any]]


def load(folder: Path) -> list[Resources]:
    """Return the resources of every bundle in a folder, one list per bundle."""
    bundles = [orjson.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))]
    return [[e["resource"] for e in b["entry"]] for b in bundles]


async def raw(uri: str, bundles: list[Resources], rounds: int) -> float:
    """Return resources/s of plain insert_many, one call per bundle."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    collection = client["bench_layers_raw"]["resources"]
    await collection.drop()
    batches = [copy.deepcopy(b) for _ in range(rounds) for b in bundles]
    started = time.perf_counter()
    for batch in batches:
        await collection.insert_many(batch)
    seconds = time.perf_counter() - started
    await client.drop_database("bench_layers_raw")
    await client.close()
    return sum(map(len, batches)) / seconds


async def store_write(uri: str, bundles: list[Resources], rounds: int, indexes: bool) -> float:
    """Return resources/s of the hub's store write: its layout, transactions and (or not)
    its secondary indexes."""
    mongo = Mongo(uri, "bench_layers_hub")
    await mongo.client.drop_database("bench_layers_hub")
    if indexes:
        await mongo.ensure_indexes()
    store = ResourceStore(mongo, search_keys)
    batches = []
    for _ in range(rounds):
        for bundle in bundles:
            ids = [str(uuid.uuid4()) for _ in bundle]
            batches.append(
                [
                    Write(r["resourceType"], i, dict(r, id=i), None, "POST")
                    for r, i in zip(bundle, ids, strict=True)
                ]
            )
    started = time.perf_counter()
    for writes in batches:
        async with mongo.transaction() as session:
            await store.write(writes, session, now())
    seconds = time.perf_counter() - started
    await mongo.client.drop_database("bench_layers_hub")
    await mongo.close()
    return sum(map(len, batches)) / seconds


def validation(bundles: list[Resources], rounds: int) -> float:
    """Return resources/s of base-model validation alone, on one core."""
    resources = [r for _ in range(rounds) for b in bundles for r in b]
    started = time.perf_counter()
    for resource in resources:
        validate_resource(resource)
    return len(resources) / (time.perf_counter() - started)


async def main() -> None:
    """Measure each layer and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "tests" / "fixtures" / "synthea")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bundles = load(args.data)
    validation(bundles[:1], 1)  # build the models once, outside the timing
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as folder:
        with EmbeddedMongo(Path(folder) / "db") as server:
            uri = server.uri or ""
            raw_rate = await raw(uri, bundles, args.rounds)
            bare_rate = await store_write(uri, bundles, args.rounds, indexes=False)
            store_rate = await store_write(uri, bundles, args.rounds, indexes=True)
    validate_rate = validation(bundles, args.rounds)
    print(f"{'layer':44} {'resources/s':>12} {'vs raw':>7}")
    for name, rate in (
        ("raw insert_many (one call per bundle)", raw_rate),
        ("store write, no secondary index", bare_rate),
        ("store write: layout + indexes + transaction", store_rate),
        ("base-model validation alone (one core)", validate_rate),
    ):
        print(f"{name:44} {rate:12,.0f} {rate / raw_rate:7.2f}")


if __name__ == "__main__":
    asyncio.run(main())
