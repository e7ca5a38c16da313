"""Shared fixtures: one embedded database per test session, the real app over the real driver."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pymongo.errors import ConnectionFailure

from hub.app import create_app
from hub.settings import Settings


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the embedded MongoDB-wire server for the session, or use EHRHUB_TEST_MONGODB_URI."""
    given = os.environ.get("EHRHUB_TEST_MONGODB_URI")
    if given:
        yield given
        return
    from hub.store.embedded import EmbeddedMongo

    server = EmbeddedMongo(tmp_path_factory.mktemp("mongo"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(mongodb_uri: str) -> Settings:
    """Return settings pointing at a database of this session's own."""
    return Settings(mongodb_uri=mongodb_uri, database=f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    """Run the hub's app (with its lifespan) for the session; drop its database afterwards."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        for attempt in range(3):
            try:
                await application.state.mongo.client.drop_database(settings.database)
                break
            except ConnectionFailure:
                # A busy machine can miss a heartbeat: the driver then resets its pool and
                # cancels what was in flight ("operation cancelled"). Try again.
                if attempt == 2:
                    raise


@pytest.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as c:
        yield c
