"""Who may do what: every route of the app sorted into an endpoint class, and every role against
every class, a literal table asserted cell by cell. Real HTTP against a hub requiring tokens.

Issue 5, points 7 and 8. The table states the target behaviour: a clinician sees their own
facility's records (another facility's only by consent), a patient only their own records,
the ministry no FHIR resource at all (aggregate reports only), an auditor only the audit trail,
an admin only the registry (Organization, Location, Practitioner), and only a facility system
writes clinical records, its own.
"""

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from auth.helpers import bearer, challenge, register, token_for
from starlette.routing import BaseRoute, Match
from support import FHIR_JSON, observation, patient, returned, unique

from hub.app import create_app
from hub.settings import Settings

ROLES = ("admin", "facility", "clinician", "ministry", "auditor", "patient")
FORM = {"content-type": "application/x-www-form-urlencoded"}
FACILITY_SYSTEM = Settings().facility_system

# --- Endpoint classes: every route of the app is in exactly one. ---------------------------

# Each (method, path template) of the app, and its endpoint class. A route missing here fails
# `test_every_route_is_classified`: decide who may call it, then add it and its matrix column.
ROUTE_CLASSES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "open",
    ("GET", "/docs"): "open",
    ("GET", "/docs/oauth2-redirect"): "open",
    ("GET", "/redoc"): "open",
    ("GET", "/healthz"): "open",
    ("GET", "/readyz"): "open",
    ("GET", "/metrics"): "metrics",
    ("GET", "/.well-known/smart-configuration"): "open",
    ("GET", "/fhir/.well-known/smart-configuration"): "open",
    ("GET", "/fhir/metadata"): "open",
    ("POST", "/fhir/metadata"): "metadata-write",
    ("PUT", "/fhir/metadata"): "metadata-write",
    ("PATCH", "/fhir/metadata"): "metadata-write",
    ("DELETE", "/fhir/metadata"): "metadata-write",
    ("POST", "/auth/token"): "auth",
    ("POST", "/auth/login"): "auth",
    ("POST", "/auth/break-glass"): "break-glass",
    ("GET", "/audit/break-glass"): "audit-report",
    ("GET", "/admin/clients"): "admin-clients",
    ("POST", "/admin/clients"): "admin-clients",
    ("POST", "/admin/clients/{client_id}/revoke"): "admin-clients",
    ("GET", "/fhir/{resource_type}/{resource_id}"): "read",
    ("GET", "/fhir/{resource_type}/{resource_id}/_history/{version}"): "read",
    ("GET", "/fhir/{resource_type}/{resource_id}/_history"): "read",
    ("GET", "/fhir/{resource_type}"): "search",
    ("POST", "/fhir/{resource_type}/_search"): "search",
    ("GET", "/fhir"): "search",
    ("GET", "/fhir/{resource_type}/{resource_id}/{compartment_type}"): "search",
    ("GET", "/fhir/{resource_type}/_history"): "search",
    ("GET", "/fhir/Patient/{patient_id}/$everything"): "everything",
    ("GET", "/fhir/Patient/$everything"): "own-record",
    ("POST", "/fhir/{resource_type}"): "write",
    ("PUT", "/fhir/{resource_type}/{resource_id}"): "write",
    ("DELETE", "/fhir/{resource_type}/{resource_id}"): "write",
    ("PUT", "/fhir/{resource_type}"): "write",
    ("DELETE", "/fhir/{resource_type}"): "write",
    ("POST", "/fhir"): "bundle",
    ("GET", "/fhir/AuditEvent"): "audit-read",
    ("POST", "/fhir/AuditEvent/_search"): "audit-read",
    ("GET", "/fhir/AuditEvent/_history"): "audit-read",
    ("GET", "/fhir/AuditEvent/{event_id}"): "audit-read",
    ("POST", "/fhir/AuditEvent"): "audit-write",
    ("PUT", "/fhir/AuditEvent"): "audit-write",
    ("PATCH", "/fhir/AuditEvent"): "audit-write",
    ("DELETE", "/fhir/AuditEvent"): "audit-write",
    ("GET", "/fhir/AuditEvent/{rest:path}"): "audit-write",
    ("POST", "/fhir/AuditEvent/{rest:path}"): "audit-write",
    ("PUT", "/fhir/AuditEvent/{rest:path}"): "audit-write",
    ("PATCH", "/fhir/AuditEvent/{rest:path}"): "audit-write",
    ("DELETE", "/fhir/AuditEvent/{rest:path}"): "audit-write",
    ("POST", "/fhir/$validate"): "validate",
    ("POST", "/fhir/{resource_type}/$validate"): "validate",
    ("GET", "/quality"): "quality",
    ("GET", "/quality/findings"): "quality-findings",
    ("GET", "/reports/coverage"): "reports",
    ("GET", "/reports/roadmap"): "reports",
    ("GET", "/reports/quality"): "reports",
    ("GET", "/reports/quality/{facility}"): "reports",
    ("GET", "/fhir/Measure"): "reports",
    ("GET", "/fhir/Measure/{measure_id}"): "reports",
    ("GET", "/fhir/MeasureReport"): "reports",
    ("GET", "/dashboard"): "open",
    ("GET", "/dashboard/config"): "open",
    ("GET", "/dashboard/static/dashboard.css"): "open",
    ("GET", "/dashboard/static/dashboard.js"): "open",
    ("GET", "/dashboard/static/i18n/en.json"): "open",
    ("GET", "/dashboard/static/i18n/id.json"): "open",
    ("GET", "/dashboard/static/i18n/vi.json"): "open",
    ("GET", "/dashboard/static/vendor/LICENSE-chartjs.md"): "open",
    ("GET", "/dashboard/static/vendor/chart.umd.min.js"): "open",
}
# Endpoint classes that answer without a token; every other route answers 401 without one.
OPEN_CLASSES = {"open", "auth", "metadata-write"}


def hub_routes(routes: list[BaseRoute]) -> list[tuple[str, str, BaseRoute]]:
    """Return (method, path template, route) of every route, those of included routers too;
    HEAD is left out where GET is served (Starlette adds it)."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            found += hub_routes(included.routes)
            continue
        path = getattr(route, "path", repr(route))
        methods = getattr(route, "methods", None) or {"(any method)"}
        for method in sorted(methods):
            if not (method == "HEAD" and "GET" in methods):
                found.append((method, path, route))
    return found


# Collected once from a freshly built app (no database is touched): a test per route.
APP_ROUTES = hub_routes(create_app(Settings(mongodb_uri="mongodb://unused")).routes)


def route_of(routes: list[tuple[str, str, BaseRoute]], method: str, path: str) -> tuple[str, str]:
    """Return the (method, template) of the route that serves a request, as the app picks it."""
    scope = {"type": "http", "method": method, "path": path.split("?")[0]}
    for route_method, template, route in routes:
        if route_method == method and route.matches(scope)[0] == Match.FULL:
            return method, template
    raise AssertionError(f"no route serves {method} {path}")


# --- The matrix --------------------------------------------------------------------------

# The request succeeded as its interaction does (200; 201 for a create; 204 for a delete) and,
# for a read or search of a record, returned that record.
OK = "ok"
# The record looks absent: 404 on a read, missing from a 200 search.
HIDDEN = "hidden"
# Not shown, either way: absent or refused.
NOT_SHOWN = (HIDDEN, 403)
Cell = str | int | tuple[str | int, ...]

# Columns: endpoint classes, each on the data the row's role would reach for:
#   own          the records of the facility the facility system or clinician works at, and the
#                patient's own Patient (their citizen ID under Settings.national_id_system);
#   neighbour    another citizen's records at that same facility;
#   elsewhere    another citizen's records at another facility, without any consent;
#   registry     an Organization, Location or Practitioner the admin registered (a facility
#                system sees only its own facility's records, the registry's included).
# fmt: off
MATRIX: dict[str, tuple[Cell, ...]] = {
    #                     admin     facility  clinician  ministry  auditor   patient
    "open":              (OK,       OK,       OK,        OK,       OK,       OK),
    "token":             (OK,       OK,       OK,        OK,       OK,       OK),
    "login":             (OK,       400,      OK,        OK,       OK,       OK),
    "metadata-write":    (405,      405,      405,       405,      405,      405),
    "read":              (403,      OK,       OK,        403,      403,      OK),
    "search":            (403,      OK,       OK,        403,      403,      OK),
    "everything":        (403,      OK,       OK,        403,      403,      OK),
    "own-record":        (403,      400,      400,       403,      403,      OK),
    "read-neighbour":    (403,      OK,       OK,        403,      403,      NOT_SHOWN),
    "read-elsewhere":    (403,      HIDDEN,   NOT_SHOWN, 403,      403,      NOT_SHOWN),
    "write":             (403,      OK,       403,       403,      403,      403),
    "write-elsewhere":   (403,      403,      403,       403,      403,      403),
    "registry-read":     (OK,       HIDDEN,   OK,        403,      403,      OK),
    "registry-write":    (OK,       OK,       403,       403,      403,      403),
    "transaction":       (403,      OK,       403,       403,      403,      403),
    "batch":             (403,      OK,       403,       403,      403,      403),
    "batch-read":        (403,      OK,       OK,        403,      403,      OK),
    "batch-elsewhere":   (403,      HIDDEN,   NOT_SHOWN, 403,      403,      NOT_SHOWN),
    "audit-read":        (403,      403,      403,       403,      OK,       OK),
    "audit-elsewhere":   (403,      403,      403,       403,      OK,       NOT_SHOWN),
    "audit-write":       (405,      405,      405,       405,      405,      405),
    "break-glass":       (403,      403,      OK,        403,      403,      403),
    "audit-report":      (403,      403,      403,       403,      OK,       403),
    "admin-clients":     (OK,       403,      403,       403,      403,      403),
    "metrics":           (OK,       403,      403,       403,      403,      403),
    "validate":          (403,      OK,       403,       403,      403,      403),
    "quality":           (OK,       OK,       403,       OK,       403,      403),
    "quality-findings":  (403,      OK,       403,       403,      403,      403),
    "reports":           (OK,       403,      403,       OK,       403,      403),
}
# fmt: on


@dataclass
class Caller:
    """A registered identity of one role: its credentials and the headers of its requests."""

    role: str
    client_id: str
    secret: str
    username: str | None
    headers: dict[str, str]


@dataclass
class World:
    """Records at two facilities and a caller of each role; the facility and clinician work at
    `facility`, and `patient` is the patient caller's own Patient there."""

    app: Any
    callers: dict[str, Caller]
    facility: str
    other_facility: str
    elsewhere: Caller  # a facility system of the other facility
    since: str
    patient: str  # Patient/id: the patient caller's own record, at `facility`
    observation: str  # Observation/id about `patient`
    neighbour: str  # Patient/id: another citizen at `facility`
    neighbour_observation: str
    other: str  # Patient/id: another citizen at the other facility
    other_observation: str
    organization: str  # Organization/id the admin registered
    event: str  # AuditEvent/id naming `patient`
    other_event: str  # AuditEvent/id naming `other`
    citizen_ids: dict[str, str]  # Patient/id -> its identifier as a token: system|value


@dataclass
class Case:
    """One request of a matrix cell, what it answers on success, and the record it is about."""

    method: str
    path: str
    success: int = 200
    target: str | None = None  # Type/id a read or search must return (or hide)
    kwargs: dict[str, Any] = field(default_factory=dict)
    entry_status: bool = False  # a batch: observe its entry's status, not the HTTP status

    def label(self) -> str:
        """Return the request line, for messages."""
        return f"{self.method} {self.path}"


async def new_caller(app: Any, http: httpx.AsyncClient, role: str, **fields: Any) -> Caller:
    """Register a caller of a role (a person with a username) and return it with a token."""
    username = unique("user.") if role != "facility" else None
    identity, secret = await register(app, role, username=username, **fields)
    token = await token_for(http, identity, secret)
    return Caller(role, identity.client_id, secret, username, FHIR_JSON | bearer(token))


async def created(http: httpx.AsyncClient, who: Caller, resource: dict[str, Any]) -> str:
    """Create a resource as a caller; return its Type/id."""
    kind = resource["resourceType"]
    response = await http.post(f"/fhir/{kind}", json=resource, headers=who.headers)
    assert response.status_code == 201, response.text
    return f"{kind}/{response.json()['id']}"


async def event_about(http: httpx.AsyncClient, auditor: Caller, reference: str) -> str:
    """Return the AuditEvent/id of an event naming a Patient, as the auditor finds it."""
    response = await http.get(
        "/fhir/AuditEvent", params={"patient": reference, "_count": "1"}, headers=auditor.headers
    )
    assert response.status_code == 200, response.text
    return f"AuditEvent/{response.json()['entry'][0]['resource']['id']}"


def citizen_id() -> str:
    """Return a 12-digit citizen ID of this test run's own."""
    return str(uuid.uuid4().int)[-12:]


@pytest.fixture(scope="module")
async def world(secured_app: Any, secured: httpx.AsyncClient) -> World:
    """Register a caller of every role and the records each would reach for."""
    code, other_code, cccd = unique("F"), unique("G"), citizen_id()
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    callers = {
        "admin": await new_caller(secured_app, secured, "admin"),
        "facility": await new_caller(secured_app, secured, "facility", facility=code),
        "clinician": await new_caller(secured_app, secured, "clinician", facility=code),
        "ministry": await new_caller(secured_app, secured, "ministry"),
        "auditor": await new_caller(secured_app, secured, "auditor"),
        "patient": await new_caller(secured_app, secured, "patient", patient=cccd),
    }
    elsewhere = await new_caller(secured_app, secured, "facility", facility=other_code)
    own = callers["facility"]
    organization = await created(
        secured, callers["admin"], {"resourceType": "Organization", "name": unique("Org ")}
    )
    # Each Patient is managed by the registry's Organization: a path for _has and _revinclude.
    managed = {"managingOrganization": {"reference": organization}}
    neighbour_cccd, other_cccd = citizen_id(), citizen_id()
    mine = await created(secured, own, patient(cccd, **managed))
    neighbour = await created(secured, own, patient(neighbour_cccd, **managed))
    other = await created(secured, elsewhere, patient(other_cccd, **managed))
    national = Settings().national_id_system
    # Read once each, so that the trail names them.
    await secured.get(f"/fhir/{mine}", headers=own.headers)
    await secured.get(f"/fhir/{other}", headers=elsewhere.headers)
    return World(
        app=secured_app,
        callers=callers,
        facility=code,
        other_facility=other_code,
        elsewhere=elsewhere,
        since=since,
        patient=mine,
        observation=await created(secured, own, observation(mine)),
        neighbour=neighbour,
        neighbour_observation=await created(secured, own, observation(neighbour)),
        other=other,
        other_observation=await created(secured, elsewhere, observation(other)),
        organization=organization,
        event=await event_about(secured, callers["auditor"], mine),
        other_event=await event_about(secured, callers["auditor"], other),
        citizen_ids={
            mine: f"{national}|{cccd}",
            neighbour: f"{national}|{neighbour_cccd}",
            other: f"{national}|{other_cccd}",
        },
    )


def reads(record: str, about: str) -> list[Case]:
    """Return the read, vread and history requests of a Patient and an Observation about it."""
    return [
        Case("GET", f"/fhir/{record}", target=record),
        Case("GET", f"/fhir/{record}/_history/1", target=record),
        Case("GET", f"/fhir/{record}/_history", target=record),
        Case("GET", f"/fhir/{about}", target=about),
    ]


def searches(world: World, record: str, about: str) -> list[Case]:
    """Return every kind of search that finds a Patient or an Observation about it."""
    patient_id = record.split("/")[1]
    citizen = quote(world.citizen_ids[record], safe="")
    return [
        Case("GET", f"/fhir/Patient?_id={patient_id}", target=record),
        Case(
            "POST",
            "/fhir/Observation/_search",
            target=about,
            kwargs={"content": f"subject={record}", "headers": FORM},
        ),
        Case("GET", f"/fhir?_type=Patient&_id={patient_id}", target=record),
        Case("GET", f"/fhir/{record}/Observation", target=about),
        Case("GET", f"/fhir/Patient?identifier={citizen}", target=record),
        Case("GET", f"/fhir/Observation?subject:Patient.identifier={citizen}", target=about),
        Case("GET", f"/fhir/Observation/_history?_since={world.since}&_count=1000", target=about),
    ]


def everything(record: str) -> list[Case]:
    """Return the $everything request of a Patient."""
    return [Case("GET", f"/fhir/{record}/$everything", target=record)]


Prepare = Callable[[httpx.AsyncClient, World, str], Awaitable[list[Case]]]


async def own_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read, vread and history of the own Patient and an Observation about it."""
    return reads(world.patient, world.observation)


async def own_searches(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Every kind of search finding the own Patient or an Observation about it."""
    return searches(world, world.patient, world.observation)


async def own_record(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """A person's own whole record, without naming a Patient: the patient role's only."""
    return [Case("GET", "/fhir/Patient/$everything", target=world.patient)]


async def own_everything(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """$everything of the own Patient."""
    return everything(world.patient)


async def neighbour_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Reads, searches and $everything of another citizen at the same facility."""
    record, about = world.neighbour, world.neighbour_observation
    return reads(record, about) + searches(world, record, about) + everything(record)


async def elsewhere_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Reads, searches and $everything of another citizen at another facility."""
    record, about = world.other, world.other_observation
    return reads(record, about) + searches(world, record, about) + everything(record)


async def own_writes(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Create, update and delete (plainly and conditionally) records of the caller's facility:
    those to change are written by its facility system first."""
    writer = world.callers["facility"]
    updated = await created(http, writer, observation(world.patient))
    deleted = await created(http, writer, observation(world.patient))
    marker = {"system": "urn:test:matrix", "value": unique()}
    await created(http, writer, observation(world.patient, identifier=[marker]))
    query = f"identifier={marker['system']}|{marker['value']}"
    fresh = {"system": "urn:test:matrix", "value": unique()}
    return [
        Case("POST", "/fhir/Observation", 201, kwargs={"json": observation(world.patient)}),
        Case(
            "POST",
            "/fhir/Observation",
            201,
            kwargs={
                "json": observation(world.patient, identifier=[fresh]),
                "headers": {"if-none-exist": f"identifier={fresh['system']}|{fresh['value']}"},
            },
        ),
        Case(
            "PUT",
            f"/fhir/{updated}",
            kwargs={"json": observation(world.patient, id=updated.split("/")[1])},
        ),
        Case(
            "PUT",
            f"/fhir/Observation?{query}",
            kwargs={"json": observation(world.patient, identifier=[marker], status="amended")},
        ),
        Case("DELETE", f"/fhir/{deleted}", 204),
        Case("DELETE", f"/fhir/Observation?{query}", 204),
    ]


async def elsewhere_writes(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Overwrite another facility's record, and create a record claiming another facility:
    alone, in a transaction and in a batch."""
    other_id = world.other_observation.split("/")[1]
    claim = {"tag": [{"system": FACILITY_SYSTEM, "code": world.other_facility}]}
    overwrite = observation(world.other, id=other_id, status="amended")
    claiming = observation(world.other, meta=claim)
    entries = [
        {"resource": overwrite, "request": {"method": "PUT", "url": world.other_observation}},
        {"resource": claiming, "request": {"method": "POST", "url": "Observation"}},
    ]
    bundles = [
        {"resourceType": "Bundle", "type": kind, "entry": [entry]}
        for kind in ("transaction", "batch")
        for entry in entries
    ]
    return [
        Case("PUT", f"/fhir/{world.other_observation}", kwargs={"json": overwrite}),
        Case("POST", "/fhir/Observation", 201, kwargs={"json": claiming}),
    ] + [
        Case("POST", "/fhir", kwargs={"json": b}, entry_status=b["type"] == "batch")
        for b in bundles
    ]


async def registry_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read and search the admin's Organization."""
    org_id = world.organization.split("/")[1]
    return [
        Case("GET", f"/fhir/{world.organization}", target=world.organization),
        Case("GET", f"/fhir/Organization?_id={org_id}", target=world.organization),
    ]


async def registry_writes(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Create each registry type, and update and delete an Organization: one the caller
    registered itself when it may, else the admin's."""
    owner = world.callers[role if role in ("admin", "facility") else "admin"]
    organization = {"resourceType": "Organization", "name": unique("Org ")}
    updated = await created(http, owner, organization)
    deleted = await created(http, owner, organization)
    return [
        Case("POST", "/fhir/Organization", 201, kwargs={"json": organization}),
        Case("POST", "/fhir/Location", 201, kwargs={"json": {"resourceType": "Location"}}),
        Case(
            "POST",
            "/fhir/Practitioner",
            201,
            kwargs={"json": {"resourceType": "Practitioner", "name": [{"family": "Lê"}]}},
        ),
        Case(
            "PUT",
            f"/fhir/{updated}",
            kwargs={"json": organization | {"id": updated.split("/")[1], "active": False}},
        ),
        Case("DELETE", f"/fhir/{deleted}", 204),
    ]


def bundle(kind: str, world: World) -> dict[str, Any]:
    """Return a transaction or batch Bundle creating one Observation about the own patient."""
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "resource": observation(world.patient),
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }


async def transactions(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """A transaction creating an Observation about the own Patient."""
    return [Case("POST", "/fhir", kwargs={"json": bundle("transaction", world)})]


async def batches(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """A batch creating an Observation about the own Patient; its entry's status counts."""
    return [Case("POST", "/fhir", 201, kwargs={"json": bundle("batch", world)}, entry_status=True)]


def batch_of_reads(record: str, about: str) -> list[Case]:
    """Return batches that read a Patient and search for it and what is about it, one GET
    entry each."""
    reads = [
        (record, record),
        (record, f"Patient?_id={record.split('/')[1]}"),
        (about, f"Observation?subject={record}&_id={about.split('/')[1]}"),
    ]
    return [
        Case(
            "POST",
            "/fhir",
            target=target,
            entry_status=True,
            kwargs={
                "json": {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [{"request": {"method": "GET", "url": url}}],
                }
            },
        )
        for target, url in reads
    ]


async def own_batch_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Batches reading and searching the own Patient and what is about it."""
    return batch_of_reads(world.patient, world.observation)


async def elsewhere_batch_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Batches reading and searching another facility's patient."""
    return batch_of_reads(world.other, world.other_observation)


async def audit_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Search, history and read of the trail, for an event naming the own Patient."""
    event_id = world.event.split("/")[1]
    return [
        Case(
            "GET",
            f"/fhir/AuditEvent?patient={world.patient}&_id={event_id}",
            target=world.event,
        ),
        Case(
            "POST",
            "/fhir/AuditEvent/_search",
            target=world.event,
            kwargs={"content": f"_id={event_id}", "headers": FORM},
        ),
        Case("GET", "/fhir/AuditEvent/_history?_count=1"),
        Case("GET", f"/fhir/{world.event}", target=world.event),
    ]


async def audit_elsewhere(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Search and read an event naming another facility's patient."""
    event_id = world.other_event.split("/")[1]
    return [
        Case(
            "GET",
            f"/fhir/AuditEvent?patient={world.other}&_id={event_id}",
            target=world.other_event,
        ),
        Case("GET", f"/fhir/AuditEvent?_id={event_id}", target=world.other_event),
        Case("GET", f"/fhir/{world.other_event}", target=world.other_event),
    ]


async def audit_writes(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Every way of writing to the audit trail."""
    event = {"resourceType": "AuditEvent", "id": world.event.split("/")[1]}
    return [
        Case("POST", "/fhir/AuditEvent", kwargs={"json": event}),
        Case("PUT", f"/fhir/{world.event}", kwargs={"json": event}),
        Case("PATCH", f"/fhir/{world.event}", kwargs={"json": []}),
        Case("DELETE", f"/fhir/{world.event}"),
        Case("DELETE", f"/fhir/AuditEvent?_id={event['id']}"),
        Case("PUT", f"/fhir/AuditEvent?_id={event['id']}", kwargs={"json": event}),
        Case("PATCH", "/fhir/AuditEvent", kwargs={"json": []}),
        Case("GET", f"/fhir/{world.event}/_history"),
        Case("POST", f"/fhir/{world.event}/_history", kwargs={"json": event}),
    ]


async def open_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Every open route that answers GET."""
    return [
        Case("GET", template)
        for method, template, _ in APP_ROUTES
        if ROUTE_CLASSES.get((method, template)) == "open" and method == "GET"
    ]


async def metadata_writes(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Every write method on the CapabilityStatement."""
    return [
        Case(method, "/fhir/metadata", kwargs={"json": {"resourceType": "CapabilityStatement"}})
        for method in ("POST", "PUT", "PATCH", "DELETE")
    ]


async def token_requests(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Ask for a token with the caller's own client credentials."""
    who = world.callers[role]
    form = {"grant_type": "client_credentials", "client_id": who.client_id}
    return [Case("POST", "/auth/token", kwargs={"data": form | {"client_secret": who.secret}})]


async def login_requests(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Log in with the caller's own username and password (a system: its id)."""
    who = world.callers[role]
    form = {"username": who.username or who.client_id, "password": who.secret}
    return [Case("POST", "/auth/login", kwargs={"data": form})]


async def break_glass_declarations(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Declare an emergency about another facility's patient."""
    form = {"reason": "Unconscious in the emergency room; no relative reachable"}
    form["patient"] = world.other
    return [Case("POST", "/auth/break-glass", kwargs={"data": form})]


async def break_glass_reports(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read the break-the-glass review report."""
    return [Case("GET", "/audit/break-glass")]


async def client_management(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """List, register and revoke clients; the one revoked is a new one, of no use to anyone."""
    spare, _ = await register(world.app, "ministry")
    new_client = {"role": "ministry", "name": unique("Analyst ")}
    return [
        Case("GET", f"/admin/clients?facility={world.facility}"),
        Case("POST", "/admin/clients", 201, kwargs={"json": new_client}),
        Case("POST", f"/admin/clients/{spare.client_id}/revoke"),
    ]


async def validations(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Ask whether an Observation would pass, by type and at the base (stores nothing)."""
    resource = observation(world.patient)
    return [
        Case("POST", "/fhir/Observation/$validate", kwargs={"json": resource}),
        Case("POST", "/fhir/$validate", kwargs={"json": resource}),
    ]


async def quality_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read the data quality the national profiles measured."""
    return [Case("GET", "/quality")]


async def findings_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read a facility's own records' findings."""
    return [Case("GET", "/quality/findings")]


async def report_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read the ministry's reports, as JSON and as CSV."""
    return [
        Case("GET", "/reports/coverage"),
        Case("GET", "/reports/coverage?format=csv"),
        Case("GET", "/reports/roadmap"),
        Case("GET", "/reports/quality?format=csv"),
        Case("GET", f"/reports/quality/{world.facility}"),
        Case("GET", "/fhir/Measure"),
        Case("GET", "/fhir/Measure/facilities-connected"),
        Case("GET", "/fhir/MeasureReport?measure=https://ehrhub.org/fhir/Measure/data-quality"),
    ]


async def metrics_reads(http: httpx.AsyncClient, world: World, role: str) -> list[Case]:
    """Read the hub's traffic counters."""
    return [Case("GET", "/metrics")]


PREPARE: dict[str, Prepare] = {
    "open": open_reads,
    "metrics": metrics_reads,
    "token": token_requests,
    "login": login_requests,
    "metadata-write": metadata_writes,
    "read": own_reads,
    "search": own_searches,
    "everything": own_everything,
    "own-record": own_record,
    "read-neighbour": neighbour_reads,
    "read-elsewhere": elsewhere_reads,
    "write": own_writes,
    "write-elsewhere": elsewhere_writes,
    "registry-read": registry_reads,
    "registry-write": registry_writes,
    "transaction": transactions,
    "batch": batches,
    "batch-read": own_batch_reads,
    "batch-elsewhere": elsewhere_batch_reads,
    "audit-read": audit_reads,
    "audit-elsewhere": audit_elsewhere,
    "audit-write": audit_writes,
    "break-glass": break_glass_declarations,
    "audit-report": break_glass_reports,
    "admin-clients": client_management,
    "validate": validations,
    "quality": quality_reads,
    "quality-findings": findings_reads,
    "reports": report_reads,
}


def observed(case: Case, response: httpx.Response) -> str | int:
    """Tell what a request did in the matrix's terms: OK, HIDDEN, or its status."""
    status = response.status_code
    needs_body = status == 200 and (case.entry_status or case.target is not None)
    body = response.json() if needs_body else None
    if case.entry_status and status == 200:
        entry = body["entry"][0]
        status = int(entry["response"]["status"].split()[0])
        body = entry.get("resource")
    if case.target is None:
        return OK if status == case.success else status
    if status == 404:
        return HIDDEN
    if status == 200:
        return OK if case.target in returned(body) else HIDDEN
    return status


def matrix_cells() -> list[Any]:
    """Return one pytest parameter per cell, with ids such as `clinician-write`."""
    return [
        pytest.param(role, column, expected[ROLES.index(role)], id=f"{role}-{column}")
        for column, expected in MATRIX.items()
        for role in ROLES
    ]


@pytest.mark.parametrize(("role", "column", "expected"), matrix_cells())
async def test_matrix(
    secured: httpx.AsyncClient, world: World, role: str, column: str, expected: Cell
) -> None:
    """Every request of a cell answers as the table says."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    who = world.callers[role]
    wrong = []
    for case in await PREPARE[column](secured, world, role):
        kwargs = dict(case.kwargs)
        headers = who.headers | kwargs.pop("headers", {})
        if case.path in ("/auth/token", "/auth/login"):
            headers = {}  # the OAuth2 endpoints take a form, not a bearer token
        elif "data" in kwargs:
            headers.pop("content-type")  # httpx sends the form's own
        response = await secured.request(case.method, case.path, headers=headers, **kwargs)
        assert response.status_code < 500, (case.label(), response.text)
        got = observed(case, response)
        if got not in allowed:
            wrong.append(f"{case.label()}: {got} ({response.status_code} {response.text[:200]})")
    assert not wrong, f"{role} on {column} should be {expected}:\n" + "\n".join(wrong)


async def test_matrix_reaches_every_classified_route(
    secured: httpx.AsyncClient, world: World
) -> None:
    """The matrix's requests, all roles together, exercise every route of the app."""
    reached = set()
    for prepare in PREPARE.values():
        for case in await prepare(secured, world, "facility"):
            reached.add(route_of(APP_ROUTES, case.method, case.path))
    unreached = {(m, t) for m, t, _ in APP_ROUTES} - reached
    assert not unreached, f"no matrix request reaches {sorted(unreached)}"


def test_matrix_has_every_role_in_every_column() -> None:
    """Each column of the table has one cell per role, and each column a request maker."""
    assert all(len(cells) == len(ROLES) for cells in MATRIX.values())
    assert set(MATRIX) == set(PREPARE)


@pytest.mark.parametrize(
    ("method", "template"),
    [(m, t) for m, t, _ in APP_ROUTES],
    ids=[f"{m} {t}" for m, t, _ in APP_ROUTES],
)
def test_every_route_is_classified(method: str, template: str) -> None:
    """A route nobody has classified fails until someone decides who may call it."""
    assert (method, template) in ROUTE_CLASSES, (
        f"{method} {template} is a route of the app in no endpoint class: add it to "
        "ROUTE_CLASSES (and, for a new class, a MATRIX column) in tests/auth/test_matrix.py"
    )


# Values for the placeholders of route templates, to call each route without a token.
PLACEHOLDERS = {
    "resource_type": "Patient",
    "resource_id": "x1",
    "patient_id": "x1",
    "version": "1",
    "compartment_type": "Observation",
    "event_id": "x1",
    "rest": "x1/_history",
    "client_id": "ministry-0000000000000000",
    "facility": "79001",
    "measure_id": "facilities-connected",
}


@pytest.mark.parametrize(
    ("method", "template"),
    [(m, t) for m, t, _ in APP_ROUTES if ROUTE_CLASSES.get((m, t)) not in OPEN_CLASSES],
    ids=[f"{m} {t}" for m, t, _ in APP_ROUTES if ROUTE_CLASSES.get((m, t)) not in OPEN_CLASSES],
)
async def test_every_closed_route_without_a_token_is_401(
    secured: httpx.AsyncClient, method: str, template: str
) -> None:
    """Every route outside the open classes answers 401 and its challenge without a token."""
    path = re.sub(r"{(\w+)(:\w+)?}", lambda m: PLACEHOLDERS[m.group(1)], template)
    kwargs: dict[str, Any] = {"json": patient()} if method in ("POST", "PUT", "PATCH") else {}

    response = await secured.request(method, path, **kwargs)

    assert response.status_code == 401, response.text
    assert challenge(response) == 'Bearer realm="ehrhub"'
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "template"),
    [(m, t) for m, t, _ in APP_ROUTES if ROUTE_CLASSES.get((m, t)) == "open"],
)
async def test_every_open_route_answers_without_a_token(
    secured: httpx.AsyncClient, method: str, template: str
) -> None:
    """The open routes answer 200 to anyone."""
    response = await secured.request(method, template)

    assert response.status_code == 200, response.text


def identifier_of(resource: dict[str, Any]) -> str:
    """Return a Patient's citizen ID as a token search value: system|value."""
    first = resource["identifier"][0]
    return f"{first['system']}|{first['value']}"


@pytest.mark.parametrize("role", ROLES)
async def test_no_side_channel_through_has_or_revinclude(
    secured: httpx.AsyncClient, world: World, role: str
) -> None:
    """A Patient a role may not read neither selects a registry record through _has nor comes
    back through _revinclude: the ministry, auditor and admin learn nothing of any patient,
    the patient nothing of their neighbour."""
    owner = world.callers["facility"].headers
    neighbour = (await secured.get(f"/fhir/{world.neighbour}", headers=owner)).json()
    org_id = world.organization.split("/")[1]
    headers = world.callers[role].headers
    sees_neighbour = role in ("facility", "clinician")

    probe = await secured.get(
        "/fhir/Organization",
        params={"_id": org_id, "_has:Patient:organization:identifier": identifier_of(neighbour)},
        headers=headers,
    )
    revinclude = await secured.get(
        "/fhir/Organization",
        params={"_id": org_id, "_revinclude": "Patient:organization"},
        headers=headers,
    )

    for response in (probe, revinclude):
        assert response.status_code in (200, 403), response.text
    if probe.status_code == 200 and not sees_neighbour:
        assert world.organization not in returned(probe.json()), probe.text
    if role == "clinician":  # the probe works: who may see the neighbour finds the Organization
        assert world.organization in returned(probe.json()), probe.text
    if revinclude.status_code == 200:
        patients = {r for r in returned(revinclude.json()) if r.startswith("Patient/")}
        allowed = {
            "facility": {world.patient, world.neighbour},
            "clinician": {world.patient, world.neighbour},
            "patient": {world.patient},
        }.get(role, set())
        assert patients <= allowed, (role, patients)


@pytest.mark.parametrize("role", ["admin", "ministry", "auditor"])
async def test_a_compartment_search_refuses_before_looking_up_the_patient(
    secured: httpx.AsyncClient, world: World, role: str
) -> None:
    """A role that may not search a compartment's type gets 403 whether or not the Patient
    exists: the answer tells nothing about who is registered."""
    headers = world.callers[role].headers
    known = await secured.get(f"/fhir/{world.patient}/Observation", headers=headers)
    unknown = await secured.get("/fhir/Patient/no-such-patient/Observation", headers=headers)

    assert (known.status_code, unknown.status_code) == (403, 403), (known.text, unknown.text)


async def test_counts_and_everything_hold_only_what_a_role_may_see(
    secured: httpx.AsyncClient, world: World
) -> None:
    """Totals count, and $everything returns, only the records the caller may see: the
    patient their own, the clinician nothing of another facility's patient without consent."""
    patient_headers = world.callers["patient"].headers
    clinician_headers = world.callers["clinician"].headers
    other_citizen = world.citizen_ids[world.other]

    patients = await secured.get("/fhir/Patient?_summary=count", headers=patient_headers)
    observations = await secured.get("/fhir/Observation?_summary=count", headers=patient_headers)
    about_them = await secured.get(
        "/fhir/Observation",
        params={"subject": world.patient, "_summary": "count"},
        headers=world.callers["facility"].headers,
    )
    elsewhere = await secured.get(
        "/fhir/Patient",
        params={"identifier": other_citizen, "_total": "accurate"},
        headers=clinician_headers,
    )
    everything_ = await secured.get(f"/fhir/{world.patient}/$everything", headers=patient_headers)

    assert patients.json()["total"] == 1, patients.text
    assert observations.json()["total"] == about_them.json()["total"], observations.text
    assert elsewhere.json()["total"] == 0, elsewhere.text
    shown = returned(everything_.json())
    assert world.patient in shown and world.observation in shown
    assert not shown & {world.neighbour, world.neighbour_observation, world.other}
