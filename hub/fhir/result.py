"""What an interaction answers, before it becomes an HTTP response or a Bundle entry."""

from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.client_session import AsyncClientSession

from hub.auth.caller import UNRESTRICTED_CALLER, Caller
from hub.fhir.outcome import Issue, information, operation_outcome
from hub.settings import Settings
from hub.store.resources import ResourceStore, Stored
from hub.store.scope import Scope

if TYPE_CHECKING:
    from hub.access.view import AccessControl
    from hub.audit.record import Record
    from hub.audit.trail import AuditTrail
    from hub.reporting.counters import Counters


@dataclass
class Context:
    """What every interaction needs: the store, settings, the caller's scope, the base URL."""

    store: ResourceStore
    settings: Settings
    scope: Scope
    base: str  # absolute URL of the FHIR base, e.g. http://host/fhir
    prefer_return: str = "representation"
    # Prefer: handling=strict refuses unknown search parameters; lenient ignores them.
    strict: bool = False
    # Set inside a transaction, so that its reads see its own writes.
    session: AsyncClientSession | None = None
    # Who asks: their token's scopes bound each interaction (`hub.auth.deps.require_scope`).
    caller: Caller = UNRESTRICTED_CALLER
    # What this request returned and wrote, for its AuditEvent (hub.audit.middleware).
    audit: "Record | None" = None
    # The audit trail, for the AuditEvent interactions (hub.audit.search).
    audit_trail: "AuditTrail | None" = None
    # The reporting counters each accepted write adds to (hub.reporting.counters).
    counters: "Counters | None" = None
    # Who may see what: the person resolver and the scopes of requests (hub.access.view).
    access: "AccessControl | None" = None


@dataclass
class Result:
    """The outcome of one interaction."""

    status: int
    body: dict[str, Any] | None = None
    stored: Stored | None = None
    location: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # What the national profiles found in a resource stored all the same (lenient mode).
    findings: list[Issue] = field(default_factory=list)


def etag(stored: Stored) -> str:
    """Return the weak ETag of a stored version."""
    return f'W/"{stored.version}"'


def version_url(ctx: Context, stored: Stored) -> str:
    """Return the absolute URL of a stored version."""
    return f"{ctx.base}/{stored.resource_type}/{stored.id}/_history/{stored.version}"


def version_headers(ctx: Context, result: Result) -> dict[str, str]:
    """Return ETag, Last-Modified and, for writes, Location of the result's version."""
    headers = dict(result.headers)
    if result.stored is not None:
        headers["ETag"] = etag(result.stored)
        headers["Last-Modified"] = format_datetime(result.stored.timestamp, usegmt=True)
        if result.location:
            headers["Location"] = version_url(ctx, result.stored)
    return headers


def with_preference(ctx: Context, result: Result) -> Result:
    """Give a write's result the body the client asked for with `Prefer: return=`."""
    if ctx.prefer_return == "minimal":
        result.body = None
    elif ctx.prefer_return == "OperationOutcome" and result.findings:
        result.body = operation_outcome(result.findings)
    elif ctx.prefer_return == "OperationOutcome":
        result.body = information(f"{result.status}: the interaction succeeded")
    elif result.body is None and result.stored is not None and not result.stored.deleted:
        result.body = result.stored.resource
    return result
