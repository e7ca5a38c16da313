"""No FHIR route escapes the audit trail: each route of the app under /fhir is called, and each
call must leave exactly one AuditEvent naming its interaction. A new route fails here until
hub/audit/interactions.py names what it does."""

import re
from typing import Any

import httpx
from audit.helpers import caller, events_of, subtype
from fastapi.routing import APIRoute
from support import patient

from hub.audit.interactions import BY_METHOD, BY_METHOD_ROUTES, BY_ROUTE, UNAUDITED_PATHS
from hub.audit.middleware import AUDITED_PREFIXES


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Return the routes of an app or router, those of included routers too."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            found += api_routes(included.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def fhir_routes(app: Any) -> list[tuple[str, str, str]]:
    """Return (endpoint name, method, path template) of every audited route: the FHIR API,
    the audit reports and the admin endpoints."""
    found = []
    for route in api_routes(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith(AUDITED_PREFIXES):
            for method in sorted(route.methods):
                if not (method == "GET" and route.path in UNAUDITED_PATHS):
                    found.append((route.name, method, route.path))
    return found


async def test_every_fhir_route_is_audited(app: Any, client: httpx.AsyncClient) -> None:
    who = await caller(app, client, "facility")
    created = await client.post("/fhir/Patient", json=patient(), headers=who.headers)
    pid = created.json()["id"]
    values = {
        "resource_type": "Patient",
        "resource_id": pid,
        "patient_id": pid,
        "version": "1",
        "compartment_type": "Observation",
        "event_id": "x1",
        "rest": "x1/_history",
        "client_id": "x1",
        "facility": "79001",
        "measure_id": "facilities-connected",
    }
    routes = fhir_routes(app)
    assert len(routes) > 20
    for name, method, template in routes:
        assert name in BY_ROUTE or name in BY_METHOD_ROUTES, f"{name} is not named for audit"
        path = re.sub(r"{(\w+)(:\w+)?}", lambda m: values[m.group(1)], template)
        # Counted over the whole trail: /fhir/metadata does not read the token.
        before = await app.state.mongo.audit.count_documents({})
        headers = dict(who.headers)
        body: dict[str, Any] = {"json": patient(id=pid)}
        if path.endswith("/_search"):
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = {"content": "_count=1"}
        if method == "DELETE" and "{resource_id}" not in template:
            path += "?identifier=nothing"
        response = await client.request(method, path, headers=headers, **body)
        assert await app.state.mongo.audit.count_documents({}) == before + 1, (method, path)
        events = [await app.state.mongo.audit.find_one({}, sort=[("_id", -1)])]
        expected = BY_ROUTE[name] if name in BY_ROUTE else BY_METHOD[method]
        assert subtype(events[-1]) == expected.subtype, (method, path)
        assert events[-1]["outcomeDesc"].startswith(f"HTTP {response.status_code} ")
        if response.status_code >= 400:
            assert events[-1]["outcome"] == ("4" if response.status_code < 500 else "8")


async def test_unrouted_requests_are_audited(app: Any, client: httpx.AsyncClient) -> None:
    who = await caller(app, client, "facility")
    for method, path, status in [
        ("PATCH", "/fhir/Patient/x1", 405),
        ("GET", "/fhir/Patient/x1/_history/1/more", 404),
    ]:
        response = await client.request(method, path, headers=who.headers)
        assert response.status_code == status
    assert [e["outcome"] for e in await events_of(app, who.client_id)] == ["4", "4"]
