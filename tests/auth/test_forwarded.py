"""X-Forwarded-For is believed only from the proxies EHRHUB_TRUSTED_PROXIES lists: against a real
server configured as `ehrhub serve` configures it, the audit trail's address is the caller's."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from support import client_for, token_auth

from hub.app import create_app
from hub.cli import hub_server
from hub.store.embedded import free_port

FORGED = "203.0.113.77"
START_SECONDS = 30.0


@asynccontextmanager
async def served(app: Any, **changes: Any) -> AsyncIterator[str]:
    """Run the hub with the session's settings (and these changes) under uvicorn on a free
    port, as `ehrhub serve` runs it; yield its base URL."""
    settings = app.state.settings.model_copy(
        update={"host": "127.0.0.1", "port": free_port(), **changes}
    )
    server = hub_server(create_app(settings), settings, access_log=False)
    thread = threading.Thread(target=server.run, name="hub-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the hub did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, START_SECONDS)


async def recorded_address(app: Any, base: str) -> str:
    """Read a Patient search with a forged X-Forwarded-For; return the address the audit
    trail recorded for it, read back by an auditor."""
    system = await token_auth(app, "facility", facility="F-PROXY")
    async with httpx.AsyncClient(base_url=base, auth=system) as http:
        response = await http.get(
            "/fhir/Patient", params={"_count": "1"}, headers={"x-forwarded-for": FORGED}
        )
    assert response.status_code == 200, response.text
    async with client_for(app, "auditor") as auditor:
        found = await auditor.get("/fhir/AuditEvent", params={"agent": system.form["client_id"]})
    assert found.status_code == 200, found.text
    [entry] = found.json()["entry"]
    return str(entry["resource"]["agent"][0]["network"]["address"])


async def test_a_local_caller_cannot_write_another_address_into_the_trail(app: Any) -> None:
    assert app.state.settings.trusted_proxies == []
    async with served(app) as base:
        address = await recorded_address(app, base)

    assert address == "127.0.0.1"


@pytest.mark.parametrize("trusted", [["127.0.0.1"], ["127.0.0.0/8"]], ids=["address", "network"])
async def test_a_listed_proxy_is_believed(app: Any, trusted: list[str]) -> None:
    async with served(app, trusted_proxies=trusted) as base:
        address = await recorded_address(app, base)

    assert address == FORGED


async def test_another_proxy_is_not_believed(app: Any) -> None:
    async with served(app, trusted_proxies=["10.0.0.5"]) as base:
        address = await recorded_address(app, base)

    assert address == "127.0.0.1"
