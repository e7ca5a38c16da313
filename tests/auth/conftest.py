"""A second hub on the session's database with tokens required, as a secured deployment runs.

It shares the database (and so the identities and signing key) with the open app of
tests/conftest.py, as hub processes on one database do.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends

from hub.app import create_app
from hub.auth.deps import require
from hub.settings import Settings

# A route that exists only in these tests, to watch `require` answer for a missing scope.
PROBE = "/probe/patient-read"


@pytest.fixture(scope="session")
def secured_settings(settings: Settings) -> Settings:
    """Return the session's settings with tokens required."""
    return settings.model_copy(update={"auth_required": True})


@pytest.fixture(scope="session")
async def secured_app(secured_settings: Settings) -> AsyncIterator[Any]:
    """Run a hub that requires tokens, with a probe route guarded by `require("r", "Patient")`."""
    application = create_app(secured_settings)

    @application.get(PROBE, dependencies=[Depends(require("r", "Patient"))])
    async def probe() -> dict[str, str]:
        return {"status": "allowed"}

    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def secured(secured_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Return an HTTP client talking to the secured hub in process."""
    transport = httpx.ASGITransport(app=secured_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client
