"""No audited route escapes the audit trail: each route of the app under /fhir, /audit, /admin,
/quality and /reports (listed here, not taken from the hub) is called, and each call must leave
exactly one AuditEvent naming its interaction. A new route fails here until
hub/audit/interactions.py names what it does; a new family of routes until it is listed here."""

import re
from typing import Any

import httpx
import pytest
from audit.helpers import caller, events_of, subtype
from fastapi.routing import APIRoute
from support import patient

from hub.audit.interactions import BY_METHOD, BY_METHOD_ROUTES, BY_ROUTE
from hub.audit.middleware import AUDITED_PREFIXES

# The route families the hub audits, written out: the hub's own list must not decide what is
# checked, or dropping a family from it would drop its check too.
AUDITED = ("/fhir", "/audit", "/admin", "/quality", "/reports")
# Read without an event: the discovery documents carry nobody's data.
UNAUDITED_READS = {"/fhir/metadata", "/fhir/.well-known/smart-configuration"}
# Routes outside the audited families, and why: tokens and logins (a break-the-glass
# declaration records its own event), discovery, the ministry's page and its static files
# (its data comes from /reports), probes and the API's own documentation.
NOT_AUDITED = (
    "/auth/",
    "/.well-known/",
    "/dashboard",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/redoc",
)
# One real call of each audited family, by a role that may make it.
FAMILY_CALLS = [
    ("/fhir", "facility", "/fhir/Patient?_count=1"),
    ("/audit", "auditor", "/audit/break-glass"),
    ("/admin", "admin", "/admin/clients"),
    ("/quality", "ministry", "/quality"),
    ("/reports", "ministry", "/reports/coverage"),
]


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


def under(path: str, family: str) -> bool:
    """Tell whether a path belongs to a route family such as /fhir."""
    return path == family or path.startswith(family + "/")


def fhir_routes(app: Any) -> list[tuple[str, str, str]]:
    """Return (endpoint name, method, path template) of every audited route: the FHIR API,
    the audit reports, the admin endpoints, data quality and the ministry's reports."""
    found = []
    for route in api_routes(app.routes):
        if any(under(route.path, family) for family in AUDITED):
            for method in sorted(route.methods or ()):
                if not (method == "GET" and route.path in UNAUDITED_READS):
                    found.append((route.name, method, route.path))
    return found


def route_paths(routes: list[Any]) -> set[str]:
    """Return the path of every route of an app or router, of included routers too."""
    found = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= route_paths(included.routes)
        else:
            found.add(route.path)
    return found


def test_every_route_is_audited_or_said_not_to_be(app: Any) -> None:
    for path in route_paths(app.routes):
        audited = any(under(path, family) for family in AUDITED)
        assert audited or path.startswith(NOT_AUDITED), f"{path}: audited or not? list it here"
    assert set(AUDITED_PREFIXES) == set(AUDITED)


@pytest.mark.parametrize(("family", "role", "path"), FAMILY_CALLS)
async def test_each_family_leaves_an_event(
    app: Any, client: httpx.AsyncClient, family: str, role: str, path: str
) -> None:
    who = await caller(app, client, role)
    r = await client.get(path, headers=who.headers)
    assert r.status_code == 200, r.text
    [event] = await events_of(app, who.client_id)
    assert event["outcomeDesc"] == f"HTTP 200 on GET {path.partition('?')[0]}"
    assert under(path, family)


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
    for family in AUDITED:
        assert [t for _, _, t in routes if under(t, family)], f"no route under {family}"
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
