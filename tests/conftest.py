"""Shared fixtures: one embedded database per test session, the real app over the real driver,
and clients that send tokens as every caller of the hub must."""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pymongo.errors import ConnectionFailure
from support import (
    BASE_URL,
    SUITE_FACILITY,
    FacilityClients,
    TokenAuth,
    hub_client,
    token_auth,
)

from hub.app import create_app
from hub.settings import TOKEN_KEY_FILE, Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add `--seed N`: the seed of the generated worlds (the access model's, fixed otherwise)."""
    parser.addoption("--seed", type=int, default=None, help="seed of generated test worlds")


@pytest.fixture(scope="session")
def mongodb_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the embedded MongoDB-wire server for the session (requiring the hub's credentials,
    which the URI carries), or use EHRHUB_TEST_MONGODB_URI."""
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
def settings(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Return settings pointing at a database of this session's own, with the token key file
    in a temporary folder (never the repository's) and the FHIR base the tests' clients use."""
    data_dir = tmp_path_factory.mktemp("hub")
    # Every hub the session builds in process, also from a Settings() of its own, belongs to
    # one deployment: it signs and verifies tokens with this one key file.
    previous = os.environ.get("EHRHUB_TOKEN_KEY_FILE")
    os.environ["EHRHUB_TOKEN_KEY_FILE"] = str(data_dir / TOKEN_KEY_FILE)
    try:
        yield Settings(
            mongodb_uri=mongodb_uri,
            database=f"test_{uuid.uuid4().hex[:12]}",
            data_dir=data_dir,
            public_base_url=f"{BASE_URL}/fhir",
        )
    finally:
        if previous is None:
            os.environ.pop("EHRHUB_TOKEN_KEY_FILE", None)
        else:
            os.environ["EHRHUB_TOKEN_KEY_FILE"] = previous


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
async def suite_auth(app: Any) -> TokenAuth:
    """Return the token of the system of the session's facility (SUITE_FACILITY,
    system/*.cruds), renewed as it ages."""
    return await token_auth(app, "facility", facility=SUITE_FACILITY, name="test suite")


@pytest.fixture(scope="session")
async def client(app: Any, suite_auth: TokenAuth) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process as the session's facility system:
    it reads back what it writes."""
    async with hub_client(app, suite_auth) as c:
        yield c


@pytest.fixture
async def lenient(app: Any, suite_auth: TokenAuth) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client like `client` that reports a server error as a 500 response instead of
    raising it."""
    async with hub_client(app, suite_auth, raise_app_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
async def anonymous(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process without a token."""
    async with hub_client(app) as c:
        yield c


@pytest.fixture(scope="session")
async def admin(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process as the hub's admin (registry)."""
    async with hub_client(app, await token_auth(app, "admin", name="test admin")) as c:
        yield c


@pytest.fixture(scope="session")
async def ministry(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process as a ministry analyst (reports)."""
    async with hub_client(app, await token_auth(app, "ministry", name="test analyst")) as c:
        yield c


@pytest.fixture(scope="session")
async def auditor(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the app in process as an auditor (the audit trail)."""
    async with hub_client(app, await token_auth(app, "auditor", name="test auditor")) as c:
        yield c


@pytest.fixture(scope="session")
async def facility_client(app: Any) -> AsyncIterator[FacilityClients]:
    """Return the clients of facility systems by code: `await facility_client("79001")`."""
    clients = FacilityClients(app)
    yield clients
    await clients.aclose()
