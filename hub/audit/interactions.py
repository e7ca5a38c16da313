"""What each FHIR route does, in AuditEvent's words: its restful-interaction and action.

`AuditMiddleware` audits every request under /fhir; this table names what it did. A route of
the FHIR router missing from it is still audited (by its HTTP method), and
tests/audit/test_every_route.py fails until it is added here.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Interaction:
    """One kind of FHIR interaction: a restful-interaction code and an AuditEvent action."""

    subtype: str
    action: str  # C create, R read, U update, D delete, E execute
    operation: str | None = None  # an operation's name, e.g. $everything


READ = Interaction("read", "R")
SEARCH = Interaction("search-type", "E")
TRANSACTION = Interaction("transaction", "E")
BATCH = Interaction("batch", "E")
EVERYTHING = Interaction("operation", "E", "$everything")

# By endpoint name of the routes in hub/fhir/router.py.
BY_ROUTE: dict[str, Interaction] = {
    "bundle": TRANSACTION,  # or BATCH, as the router notes once it has read the Bundle's type
    "search_system": Interaction("search-system", "E"),
    "search_post": SEARCH,
    "patient_everything": EVERYTHING,
    # A patient's own record, every Patient of theirs (GET /fhir/Patient/$everything).
    "own_everything": EVERYTHING,
    "validate_system": Interaction("operation", "E", "$validate"),
    "validate_type": Interaction("operation", "E", "$validate"),
    "type_history": Interaction("history-type", "R"),
    "instance_history": Interaction("history-instance", "R"),
    "search_compartment": SEARCH,
    "vread": Interaction("vread", "R"),
    "search_type": SEARCH,
    "create_resource": Interaction("create", "C"),
    "conditional_update": Interaction("update", "U"),
    "conditional_delete": Interaction("delete", "D"),
    "read_resource": READ,
    "update_resource": Interaction("update", "U"),
    "delete_resource": Interaction("delete", "D"),
    "audit_search": SEARCH,
    "audit_search_post": SEARCH,
    "audit_read": READ,
    "audit_history": Interaction("history-type", "R"),
    # Not FHIR's, but a search of the trail all the same (hub/audit/review.py).
    "break_glass_report": SEARCH,
    # The data quality the national profiles measured (hub/reporting/routes.py).
    "quality_summary": SEARCH,
    "quality_findings": SEARCH,
    "coverage_report": SEARCH,
    "roadmap_report": SEARCH,
    "quality_report": SEARCH,
    "facility_quality_report": READ,
    "measure_search": SEARCH,
    "measure_read": READ,
    "measure_report_search": SEARCH,
    # The credentials an admin manages (hub/auth/admin.py).
    "list_clients": SEARCH,
    "create_client": Interaction("create", "C"),
    "revoke_client": Interaction("update", "U"),
}

# Routes that refuse every call: audited by their HTTP method.
BY_METHOD_ROUTES = frozenset({"audit_refuse", "metadata_write"})

# Requests no route serves (404, 405) and routes that refuse every call, by HTTP method.
BY_METHOD: dict[str, Interaction] = {
    "GET": READ,
    "HEAD": READ,
    "POST": Interaction("create", "C"),
    "PUT": Interaction("update", "U"),
    "PATCH": Interaction("patch", "U"),
    "DELETE": Interaction("delete", "D"),
}

# Not audited when read (GET): the CapabilityStatement and SMART discovery carry nobody's data.
UNAUDITED_PATHS = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration"})


def interaction_of(route_name: str | None, method: str, route_methods: set[str]) -> Interaction:
    """Return what a request did, from the route that served it (if its method matched)."""
    if route_name in BY_ROUTE and method in route_methods:
        return BY_ROUTE[route_name]
    return BY_METHOD.get(method, Interaction("operation", "E"))
