"""Black-box checks of the hub served by uvicorn over real HTTP, as hospitals reach it.

The in-process tests skip uvicorn's HTTP parsing; these send what real clients send over a
socket: multi-megabyte bundles, trailing slashes, chunked uploads, and a database that goes away.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live import bearer_of, create_client, start_hub, stop_hub, wait_for_output
from support import FHIR_JSON, FIXTURES

from hub.store.embedded import EmbeddedMongo, free_port

BODY_LIMIT = 5 * 1024 * 1024  # above the largest Synthea bundle (3.7 MB)
FACILITY = "01999"


def facility_system(mongodb_uri: str, **settings: str) -> dict[str, str]:
    """Register a system of FACILITY on a hub's database, as its operator would."""
    flags = ("--role", "facility", "--facility", FACILITY, "--mongodb-uri", mongodb_uri)
    return create_client(*flags, **settings)


@pytest.fixture(scope="module")
def hub(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """Run `ehrhub serve` on the session's database, with a 5 MB body limit; return a client
    of it that sends a facility system's token, as hospitals do."""
    log = tmp_path_factory.mktemp("live") / "hub.log"
    port = free_port()
    database = f"test_live_{uuid.uuid4().hex[:12]}"
    process = start_hub(
        log,
        "--port",
        str(port),
        "--mongodb-uri",
        mongodb_uri,
        database=database,
        max_body_bytes=str(BODY_LIMIT),
    )
    try:
        wait_for_output(process, log, r"Application startup complete")
        base = f"http://127.0.0.1:{port}"
        headers = bearer_of(base, facility_system(mongodb_uri, database=database))
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            yield client
    finally:
        stop_hub(process)


def test_the_largest_synthea_bundle_goes_in_whole_over_http(hub: httpx.Client) -> None:
    """3.7 MB and 1,111 entries through uvicorn: every entry created."""
    body = (
        FIXTURES / "synthea" / "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"
    ).read_bytes()
    response = hub.post("/fhir/", content=body, headers=FHIR_JSON, timeout=120)
    assert response.status_code == 200, response.text[:500]
    statuses = {e["response"]["status"] for e in response.json()["entry"]}
    assert statuses == {"201 Created"}
    assert len(response.json()["entry"]) == 1111


def test_trailing_slashes_are_served(hub: httpx.Client) -> None:
    """Clients that append a slash to the base or a path get the same answers."""
    assert hub.get("/fhir/metadata/").json()["fhirVersion"] == "4.0.1"
    created = hub.post("/fhir/Basic/", json=_basic(), headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    read = hub.get(f"/fhir/Basic/{created.json()['id']}/")
    assert read.status_code == 200
    assert read.json()["id"] == created.json()["id"]


def test_a_body_over_the_limit_is_refused_with_413(hub: httpx.Client) -> None:
    """A declared length over the limit is refused before the hub reads it."""
    junk = b"{" + b" " * BODY_LIMIT + b"}"
    response = hub.post("/fhir", content=junk, headers=FHIR_JSON, timeout=60)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_chunked_body_over_the_limit_is_refused_with_413(hub: httpx.Client) -> None:
    """Without Content-Length the hub counts as it reads, and stops at the limit."""

    def chunks() -> Iterator[bytes]:
        yield b"{"
        for _ in range(BODY_LIMIT // 65536 + 2):
            yield b" " * 65536
        yield b"}"

    response = hub.post("/fhir", content=chunks(), headers=FHIR_JSON, timeout=60)
    assert response.status_code == 413
    assert "limit" in response.json()["issue"][0]["diagnostics"]


def test_a_lost_database_gives_503_not_500(tmp_path: Path) -> None:
    """When the database goes away, readiness fails and requests get a retryable 503."""
    log = tmp_path / "hub.log"
    database = EmbeddedMongo(tmp_path / "db")
    uri = database.start()
    port = free_port()
    hub = start_hub(log, "--port", str(port), "--mongodb-uri", uri, database_timeout_seconds="1")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_output(hub, log, r"Application startup complete")
        assert httpx.get(f"{base}/readyz").status_code == 200
        headers = bearer_of(base, facility_system(uri))
        database.stop()
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 503
        response = httpx.get(f"{base}/fhir/Patient/any", headers=headers, timeout=30)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        assert response.json()["issue"][0]["code"] == "transient"
    finally:
        stop_hub(hub)
        database.stop()


def _basic() -> dict[str, object]:
    return {"resourceType": "Basic", "code": {"text": "black-box check"}}


def test_everything_walks_a_whole_record_over_http(hub: httpx.Client) -> None:
    """A patient's record, sent as one bundle, comes back whole through `$everything`'s pages:
    each resource once, the links usable as given (absolute, `$` and cursors encoded)."""
    body = (
        FIXTURES / "synthea" / "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
    ).read_bytes()
    sent = hub.post("/fhir", content=body, headers=FHIR_JSON, timeout=120)
    assert sent.status_code == 200, sent.text[:500]
    locations = [e["response"]["location"].split("/_history")[0] for e in sent.json()["entry"]]
    [patient] = [loc for loc in locations if loc.startswith("Patient/")]
    url = f"/fhir/{patient}/$everything?_count=20"
    seen: list[str] = []
    referenced: set[str] = set()  # the organization and practitioner, outside the compartment
    while url:
        page = hub.get(url, timeout=60)
        assert page.status_code == 200, page.text[:500]
        bundle = page.json()
        for e in bundle["entry"]:
            found = f"{e['resource']['resourceType']}/{e['resource']['id']}"
            (seen.append if e["search"]["mode"] == "match" else referenced.add)(found)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), "")
    assert len(seen) == len(set(seen)) == bundle["total"]
    assert set(seen) | referenced == set(locations)
    assert {r.split("/")[0] for r in referenced} == {"Organization", "Practitioner"}
