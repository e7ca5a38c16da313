"""A second hub on the session's database, with a probe route, and a client of it that sends
no token unless a test gives one.

It shares the database (and so the identities) and the token key file with the app of
tests/conftest.py, as the hub processes of one deployment do.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends
from support import hub_client

from hub.app import create_app
from hub.auth.deps import require
from hub.settings import Settings

# A route that exists only in these tests, to watch `require` answer for a missing scope.
PROBE = "/probe/patient-read"


@pytest.fixture(scope="session")
def secured_settings(settings: Settings) -> Settings:
    """Return a copy of the session's settings, which require tokens as the hub does by
    default."""
    assert settings.auth_required
    return settings.model_copy()


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
    """Return an HTTP client talking to the secured hub in process, sending no token itself."""
    async with hub_client(secured_app) as client:
        yield client
