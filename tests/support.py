"""Helpers for tests: clients with tokens, fixtures on disk and valid resources to start from."""

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapters.sync.credentials import TokenAuth
from hub.auth.identities import new_identity
from hub.auth.roles import Role

FIXTURES = Path(__file__).parent / "fixtures"
FHIR_JSON = {"content-type": "application/fhir+json"}
GONE_WITHIN_SECONDS = 5.0
BASE_URL = "http://hub.test"
# The facility whose system the session's `client` is; tests read back what it wrote.
SUITE_FACILITY = "F-SUITE"


def hub_client(
    app: Any, auth: httpx.Auth | None = None, raise_app_exceptions: bool = True
) -> httpx.AsyncClient:
    """Return an HTTP client talking to the app in process, without a token unless `auth`;
    with `raise_app_exceptions` false, a server error comes back as a 500 response."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth)


async def token_auth(app: Any, role: str, **fields: Any) -> TokenAuth:
    """Register a new identity of a role in the app's repository; return its token's auth."""
    identity, secret = new_identity(Role(role), **fields)
    await app.state.auth.identities.create(identity)
    return TokenAuth(identity.client_id, secret)


class FacilityClients:
    """Clients of facility systems by facility code, each registered on first use: for records
    that name their facility, which only that facility's system may send."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.made: dict[str, httpx.AsyncClient] = {}

    async def __call__(self, code: str) -> httpx.AsyncClient:
        """Return the client of the facility's system."""
        if code not in self.made:
            auth = await token_auth(self.app, "facility", facility=code)
            self.made[code] = hub_client(self.app, auth)
        return self.made[code]

    async def aclose(self) -> None:
        """Close every client made."""
        for client in self.made.values():
            await client.aclose()


@asynccontextmanager
async def client_for(app: Any, role: str, **fields: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client of the app sending the token of a new identity: a facility system
    (`facility="79001"`), an admin, a clinician (`facility=`, `practitioner=`), a patient
    (`patient=` the citizen ID)..."""
    async with hub_client(app, await token_auth(app, role, **fields)) as client:
        yield client


def fixture_json(*parts: str) -> Any:
    """Load a JSON fixture."""
    return orjson.loads((FIXTURES.joinpath(*parts)).read_bytes())


def unique(prefix: str = "") -> str:
    """Return a value no other test uses, for identifiers."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def patient(identifier: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a valid Patient, with a unique identifier unless one is given."""
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": "http://fhir.hl7.org.vn/core/sid/cccd", "value": identifier or unique()}
        ],
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1985-04-12",
        **extra,
    }


def observation(subject: str, **extra: Any) -> dict[str, Any]:
    """Return a valid heart-rate Observation about `subject`."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        **extra,
    }


async def transact(client: httpx.AsyncClient, bundle: Any) -> list[str]:
    """Post a transaction Bundle; check it and every entry succeeded; return the statuses."""
    assert isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle", bundle
    response = await client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert all(s.startswith("2") for s in statuses), statuses
    return statuses


async def find_resources(client: httpx.AsyncClient, resource_type: str, **params: str) -> list[Any]:
    """Return the resources a search finds (up to 500)."""
    response = await client.get(f"/fhir/{resource_type}", params={"_count": "500", **params})
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def winning_index(explained: dict[str, Any]) -> str | None:
    """Return the index name the winning plan scans, or None for a collection scan."""
    stage = explained["queryPlanner"]["winningPlan"]
    while stage:
        stage = stage.get("queryPlan", stage)  # MongoDB 7+ nests the classic plan
        if stage.get("stage") == "IXSCAN":
            return str(stage["indexName"])
        if stage.get("stage") in ("IDHACK", "EXPRESS_IXSCAN"):
            return "_id_"
        stage = stage.get("inputStage")
    return None


def references(node: Any) -> Iterator[str]:
    """Yield every Reference.reference anywhere in a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def is_running(pid: int) -> bool:
    """Tell whether a process runs; a zombie waiting for its reaper does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_gone(pid: int) -> bool:
    """Wait a few seconds for a process to end; tell whether it did."""
    deadline = time.monotonic() + GONE_WITHIN_SECONDS
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@asynccontextmanager
async def another_hub(app: Any, **settings: Any) -> AsyncIterator[Any]:
    """Run a second hub on the app's database with some settings changed, as another hub
    process of the same deployment would run."""
    from hub.app import create_app

    current = app.state.settings
    # Validated anew, as the process would read them: derived settings follow the changed ones.
    second = create_app(type(current).model_validate(current.model_dump() | settings))
    async with second.router.lifespan_context(second):
        yield second


def returned(body: Any) -> set[str]:
    """Return the Type/id of a resource, or of every resource a Bundle's entries hold."""
    if not isinstance(body, dict):
        return set()
    if body.get("resourceType") != "Bundle":
        return {f"{body.get('resourceType')}/{body.get('id')}"}
    resources = [e.get("resource") or {} for e in body.get("entry", [])]
    return {f"{r.get('resourceType')}/{r.get('id')}" for r in resources}
