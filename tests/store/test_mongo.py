"""The hub refuses a MongoDB server that cannot run its transactions, saying how to fix it."""

import subprocess
import sys
from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from hub.app import create_app
from hub.settings import Settings
from hub.store.embedded import free_port
from hub.store.mongo import Mongo, UnsuitableDatabase


@pytest.fixture(scope="module")
def standalone_uri() -> Iterator[str]:
    """Run the embedded server as a standalone server, as a plain `mongod` without --replSet is."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secantus",
            "--standalone",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            ":memory:",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        MongoClient(uri, serverSelectionTimeoutMS=30_000).admin.command("ping")
        yield uri
    finally:
        server.terminate()
        server.wait(10)


async def test_a_standalone_server_is_refused(standalone_uri: str) -> None:
    """A standalone server fails the check with a message naming the fix."""
    mongo = Mongo(standalone_uri, "test_standalone")
    try:
        with pytest.raises(UnsuitableDatabase, match="replica set"):
            await mongo.require_transactions()
    finally:
        await mongo.close()


async def test_the_hub_does_not_start_on_a_standalone_server(standalone_uri: str) -> None:
    """The app's start-up stops there, before anything is written."""
    app = create_app(Settings(mongodb_uri=standalone_uri, database="test_standalone"))
    with pytest.raises(UnsuitableDatabase):
        async with app.router.lifespan_context(app):
            pass


async def test_a_replica_set_passes(app: object) -> None:
    """The embedded server reports itself as a replica set, as production MongoDB must be."""
    await app.state.mongo.require_transactions()  # type: ignore[attr-defined]
